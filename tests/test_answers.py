"""'Was this you?' (issue 19 §3): answer tokens, both answers, reuse, expiry, forgery, the page."""

from __future__ import annotations

import time

import pytest

from sessionsvc.domain.sessions import SessionRef
from sessionsvc.tokens.devices import (
    ANSWER_LIFETIME_S,
    ExpiredAnswerToken,
    InvalidAnswerToken,
    answer_tokens,
    read_answer_token,
)
from tests.support import SERVICE_KEY, auth, login

PAGE = "/api/account/security/answer"


def new_device_login(client, redis, key_prefix, user_id: str = "alice"):
    """Log in twice (the second time on a new device); return both and its event's pair."""
    known = login(client, user_id)
    stranger = login(client, user_id)
    events = [f for _, f in redis.xrange(f"{key_prefix}events")]
    [event] = [e for e in events if e["type"] == "session.new_device" and e["userId"] == user_id]
    return known, stranger, event


def answer(client, token: str, reply: str, **more):
    return client.post("/api/security/answers", json={"token": token, "answer": reply, **more})


def test_me_makes_the_device_known_and_trusted(client, redis, key_prefix):
    known, stranger, event = new_device_login(client, redis, key_prefix)

    response = answer(client, event["answerMe"], "me")

    assert response.status_code == 200
    assert response.json == {
        "answer": "me",
        "deviceId": stranger["session"]["deviceId"],
        "sessionIds": [],
    }
    listed = client.get("/api/devices", headers=auth(known["accessToken"])).json["devices"]
    assert {d["id"]: d["trusted"] for d in listed}[stranger["session"]["deviceId"]] is True
    assert client.get("/api/sessions", headers=auth(stranger["accessToken"])).status_code == 200


def test_not_me_signs_that_session_out_and_reports(client, redis, key_prefix):
    known, stranger, event = new_device_login(client, redis, key_prefix)

    response = answer(client, event["answerNotMe"], "not_me")

    assert response.status_code == 200
    assert response.json["sessionIds"] == [stranger["session"]["_id"]]
    assert client.get("/api/sessions", headers=auth(stranger["accessToken"])).status_code == 401
    assert client.get("/api/sessions", headers=auth(known["accessToken"])).status_code == 200
    [report] = [
        f
        for _, f in redis.xrange(f"{key_prefix}events")
        if f["type"] == "account.compromise_reported"
    ]
    assert report["userId"] == "alice"
    assert report["sessionIds"] == stranger["session"]["_id"]
    assert report["deviceId"] == stranger["session"]["deviceId"]
    assert report["reportedSessionId"] == stranger["session"]["_id"]
    assert redis.hexists(f"{key_prefix}dv:{{alice}}", "~r")


def test_not_me_everywhere_signs_out_every_session(client, redis, key_prefix):
    known, stranger, event = new_device_login(client, redis, key_prefix)

    response = answer(client, event["answerNotMe"], "not_me", signOutEverywhere=True)

    assert set(response.json["sessionIds"]) == {known["session"]["_id"], stranger["session"]["_id"]}
    for body in (known, stranger):
        assert client.get("/api/sessions", headers=auth(body["accessToken"])).status_code == 401


@pytest.mark.parametrize(
    ("first", "second"),
    [("answerMe", "answerMe"), ("answerMe", "answerNotMe"), ("answerNotMe", "answerMe")],
)
def test_a_pair_answers_once_and_a_second_use_changes_nothing(
    client, redis, key_prefix, snapshot, first, second
):
    known, _stranger, event = new_device_login(client, redis, key_prefix)
    replies = {"answerMe": "me", "answerNotMe": "not_me"}
    assert answer(client, event[first], replies[first]).status_code == 200
    before = snapshot()

    again = answer(client, event[second], replies[second], signOutEverywhere=second != "answerMe")

    assert (again.status_code, again.json["code"]) == (409, "ANSWER_ALREADY_GIVEN")
    assert snapshot() == before
    assert client.get("/api/sessions", headers=auth(known["accessToken"])).status_code == 200


def test_the_body_answer_must_be_the_tokens(client, redis, key_prefix):
    _, stranger, event = new_device_login(client, redis, key_prefix)

    response = answer(client, event["answerMe"], "not_me", signOutEverywhere=True)

    assert (response.status_code, response.json["code"]) == (400, "INVALID_REQUEST")
    assert client.get("/api/sessions", headers=auth(stranger["accessToken"])).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"answer": "me"},
        {"token": 42, "answer": "me"},
        {"token": "wa1.junk", "answer": "me"},
    ],
)
def test_a_missing_or_malformed_token_is_refused(client, body):
    response = client.post("/api/security/answers", json=body)

    assert (response.status_code, response.json["code"]) == (401, "INVALID_ANSWER_TOKEN")


@pytest.mark.parametrize("body", [None, [], {"token": "x", "answer": "maybe"}])
def test_a_bad_body_is_refused(client, redis, key_prefix, body):
    _, _, event = new_device_login(client, redis, key_prefix)
    if isinstance(body, dict):
        body["token"] = event["answerMe"]

    response = client.post("/api/security/answers", json=body)

    assert response.status_code == 400
    assert response.json["code"] == "INVALID_REQUEST"


def test_a_forged_token_is_refused(client, redis, key_prefix):
    _, stranger, event = new_device_login(client, redis, key_prefix)
    # Another session's id in an otherwise real token: its tag no longer matches.
    parts = event["answerNotMe"].split(".")
    parts[2] = login(client)["session"]["_id"]
    forged = ".".join(parts)
    made_elsewhere = answer_tokens(
        SessionRef("alice", stranger["session"]["_id"]),
        stranger["session"]["deviceId"],
        "another service's secret " + "s" * 16,
        int(time.time()),
    )["notMe"]

    for token in (forged, made_elsewhere):
        response = answer(client, token, "not_me")
        assert (response.status_code, response.json["code"]) == (401, "INVALID_ANSWER_TOKEN")
    assert client.get("/api/sessions", headers=auth(stranger["accessToken"])).status_code == 200


def test_an_expired_token_is_refused(client, app, redis, key_prefix):
    _, stranger, _ = new_device_login(client, redis, key_prefix)
    from sessionsvc.extension import sessionsvc

    eight_days_ago = int(time.time()) - 8 * 86_400
    old = answer_tokens(
        SessionRef("alice", stranger["session"]["_id"]),
        stranger["session"]["deviceId"],
        sessionsvc(app).refresh_secret,
        eight_days_ago,
    )["notMe"]

    response = answer(client, old, "not_me")

    assert (response.status_code, response.json["code"]) == (401, "ANSWER_TOKEN_EXPIRED")
    assert client.get("/api/sessions", headers=auth(stranger["accessToken"])).status_code == 200


def test_tokens_expire_after_seven_days():
    secret = "s" * 32
    pair = answer_tokens(SessionRef("alice", "A" * 22), "B" * 22, secret, 1_000)

    assert read_answer_token(pair["me"], secret, 1_000 + ANSWER_LIFETIME_S - 1).answer == "me"
    with pytest.raises(ExpiredAnswerToken):
        read_answer_token(pair["me"], secret, 1_000 + ANSWER_LIFETIME_S)
    with pytest.raises(InvalidAnswerToken):
        read_answer_token(pair["me"], "t" * 32, 1_000)
    assert ANSWER_LIFETIME_S == 7 * 86_400


def test_the_answer_key_expires_with_the_pair(client, redis, key_prefix):
    _, _, event = new_device_login(client, redis, key_prefix)

    answer(client, event["answerMe"], "me")

    [key] = redis.keys(f"{key_prefix}wa:{{alice}}*")
    assert 0 < redis.pttl(key) <= ANSWER_LIFETIME_S * 1000


# --- The page --------------------------------------------------------------------------------


def test_the_page_shows_what_happened_and_never_acts(client, redis, key_prefix, snapshot):
    _, stranger, event = new_device_login(client, redis, key_prefix)
    before = snapshot()

    page = client.get(PAGE, query_string={"token": event["answerNotMe"]})

    assert page.status_code == 200
    assert page.mimetype == "text/html"
    html = page.get_data(as_text=True)
    assert "Chrome on Linux" in html
    assert "No, sign that device out" in html
    assert stranger["session"]["createdAt"] in html
    assert snapshot() == before  # a GET changes nothing (mail scanners open links)
    assert "script-src" not in page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in page.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert page.headers["Cache-Control"] == "no-store"
    assert "<script>" not in html and "style=" not in html


def test_the_page_says_when_answered_or_not_valid(client, redis, key_prefix):
    _, _, event = new_device_login(client, redis, key_prefix)
    answer(client, event["answerMe"], "me")

    answered = client.get(PAGE, query_string={"token": event["answerNotMe"]})
    forged = client.get(PAGE, query_string={"token": "wa1.nope"})
    missing = client.get(PAGE)

    assert "answered already" in answered.get_data(as_text=True)
    assert '<form id="answer"' not in answered.get_data(as_text=True)
    for page in (forged, missing):
        assert page.status_code == 200
        assert "This link is not valid" in page.get_data(as_text=True)


def test_answers_need_no_service_key_and_no_token(client, redis, key_prefix):
    _, _, event = new_device_login(client, redis, key_prefix)

    response = client.post(
        "/api/security/answers",
        json={"token": event["answerMe"], "answer": "me"},
        headers={"X-Service-Key": "wrong" + SERVICE_KEY},
    )

    assert response.status_code == 200


def test_answers_are_rate_limited_per_address(make_app, redis, key_prefix):
    client = make_app(
        RATELIMIT_ENABLED=True,
        RATE_LIMIT_PER_USER="3 per minute",
        RATE_LIMIT_PER_IP="50 per minute",
    ).test_client()
    _, _, event = new_device_login(client, redis, key_prefix)

    statuses = [answer(client, "wa1.forged", "me").status_code for _ in range(4)]
    real = answer(client, event["answerMe"], "me")

    assert statuses == [401, 401, 401, 429]
    assert real.status_code == 429  # guessing from an address spends its allowance
