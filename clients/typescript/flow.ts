/**
 * The whole session flow through types generated from sessionsvc's served OpenAPI document.
 *
 * `npm run generate` writes generated/schema.d.ts from the running service (openapi-typescript),
 * `npm run check` type-checks this file against it (tsc --strict) and `npm run flow` runs it with
 * openapi-fetch (docs/clients.md):
 *
 *   SESSIONSVC_URL=http://127.0.0.1:8000 SESSIONSVC_SERVICE_KEY=... npm run flow
 *
 * The types are the test as much as the run: a field the document leaves `unknown` (the `ip` of a
 * session once was) does not type-check where this file reads it as a string.
 * tests/test_clients.py runs all three steps against a real server.
 */
import assert from "node:assert/strict";
import createClient from "openapi-fetch";
import type { components, paths } from "./generated/schema.js";

type Claims = components["schemas"]["Claims"];
type ErrorBody = components["schemas"]["Error"];
type Login = components["schemas"]["Login"];
type Session = components["schemas"]["Session"];

const baseUrl = process.env.SESSIONSVC_URL ?? "http://127.0.0.1:8000";
const serviceKey = process.env.SESSIONSVC_SERVICE_KEY ?? "";
assert.ok(serviceKey, "SESSIONSVC_SERVICE_KEY names the service key");
const user = "ts-client";
const userAgent = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36";

const api = createClient<paths>({ baseUrl });
const service = { "X-Service-Key": serviceKey };
const bearer = (token: string) => ({ Authorization: `Bearer ${token}` });
const step = (name: string) => console.log(`ok - ${name}`);

/** Every session field as its type says: strings, booleans and the device. */
function checkSession(session: Session): void {
  const address: string = session.ip; // `unknown` would not type-check here
  assert.match(address, /^[0-9a-f.:]+$|^unknown$/);
  const started: string = session.createdAt;
  assert.ok(!Number.isNaN(Date.parse(started)));
  assert.equal(typeof session.current, "boolean");
  assert.equal(typeof session.device.isDev, "boolean");
}

async function login(ip: string, claims?: Claims): Promise<Login> {
  const { data, error, response } = await api.POST("/api/sessions", {
    headers: service,
    body: { userId: user, userAgent, ip, ...(claims ? { claims } : {}) },
  });
  assert.equal(response.status, 201, JSON.stringify(error));
  assert.ok(data && "refreshToken" in data, "a login in body mode carries its refresh token");
  checkSession(data.session);
  assert.equal(data.session.ip, ip);
  return data;
}

async function main(): Promise<void> {
  // A clean slate: the admin revokes whatever sessions the user has.
  await api.DELETE("/api/admin/users/{user_id}/sessions", {
    params: { path: { user_id: user } },
    headers: service,
  });

  // Login, twice: an IPv4 device with claims, and an IPv6 one.
  const phone = await login("203.0.113.7", { role: "admin", tenants: ["a", "b"] });
  const laptop = await login("2001:db8::7");
  step("login");

  // List, as the phone: both, newest first, the phone's own marked.
  const listed = await api.GET("/api/sessions", { headers: bearer(phone.accessToken) });
  assert.equal(listed.response.status, 200);
  assert.ok(listed.data);
  const sessions: Session[] = listed.data.sessions;
  sessions.forEach(checkSession);
  assert.deepEqual(
    sessions.map((s) => s._id),
    [laptop.session._id, phone.session._id],
  );
  assert.deepEqual(
    sessions.map((s) => s.current),
    [false, true],
  );
  step("list");

  // Verify, as a gateway would: the ids and the claims.
  const verified = await api.GET("/api/sessions/verify", { headers: bearer(phone.accessToken) });
  assert.equal(verified.response.status, 200);
  assert.ok(verified.data);
  assert.equal(verified.data.userId, user);
  assert.equal(verified.data.sessionId, phone.session._id);
  assert.deepEqual(verified.data.claims, { role: "admin", tenants: ["a", "b"] });
  step("verify");

  // Refresh: a new pair, the old refresh token rotated out.
  const refreshed = await api.POST("/api/sessions/refresh", {
    headers: bearer(phone.refreshToken),
  });
  assert.equal(refreshed.response.status, 200, JSON.stringify(refreshed.error));
  assert.ok(refreshed.data && "refreshToken" in refreshed.data);
  const access: string = refreshed.data.accessToken;
  assert.notEqual(refreshed.data.refreshToken, phone.refreshToken);
  step("refresh");

  // The admin list and a claims update, with the service key.
  const adminList = await api.GET("/api/admin/users/{user_id}/sessions", {
    params: { path: { user_id: user } },
    headers: service,
  });
  assert.equal(adminList.response.status, 200);
  assert.ok(adminList.data);
  adminList.data.sessions.forEach(checkSession);
  assert.equal(adminList.data.sessions.length, 2);
  assert.ok(adminList.data.sessions.every((s) => !s.current)); // no caller's session
  step("admin list");

  const updated = await api.PUT("/api/admin/users/{user_id}/sessions/{session_id}/claims", {
    params: { path: { user_id: user, session_id: phone.session._id } },
    headers: service,
    body: { claims: { role: "viewer" } },
  });
  assert.equal(updated.response.status, 200, JSON.stringify(updated.error));
  assert.ok(updated.data);
  const changed: string[] = updated.data.sessionIds;
  assert.deepEqual(changed, [phone.session._id]);
  const everyone = await api.PUT("/api/admin/users/{user_id}/claims", {
    params: { path: { user_id: user } },
    headers: service,
    body: { claims: { tier: 2 } },
  });
  assert.equal(everyone.data?.sessionIds.length, 2);
  const reverified = await api.GET("/api/sessions/verify", { headers: bearer(access) });
  assert.deepEqual(reverified.data?.claims, { tier: 2 });
  step("claims update");

  // Revoke one: the phone signs the laptop out.
  const revoked = await api.DELETE("/api/sessions/{session_id}", {
    params: { path: { session_id: laptop.session._id } },
    headers: bearer(access),
  });
  assert.equal(revoked.response.status, 200);
  assert.equal(revoked.data?.code, "SESSION_REVOKED");
  step("revoke one");

  // An error answer, parsed as the error type: the laptop's session is gone.
  const again = await api.DELETE("/api/sessions/{session_id}", {
    params: { path: { session_id: laptop.session._id } },
    headers: bearer(access),
  });
  assert.equal(again.response.status, 404);
  assert.equal(again.data, undefined);
  const problem: ErrorBody | undefined = again.error;
  assert.ok(problem);
  assert.equal(problem.code, "SESSION_NOT_FOUND");
  assert.equal(typeof problem.error, "string");
  const stale = await api.GET("/api/sessions", { headers: bearer(laptop.accessToken) });
  assert.equal(stale.response.status, 401);
  assert.equal(stale.error?.code, "TOKEN_REVOKED");
  step("error");

  // Revoke all: the others first (keep=current), then every one, this one too.
  const third = await login("198.51.100.9");
  const others = await api.DELETE("/api/sessions", {
    params: { query: { keep: "current" } },
    headers: bearer(access),
  });
  assert.equal(others.data?.code, "ALL_SESSIONS_REVOKE");
  const thirdGone = await api.GET("/api/sessions/verify", { headers: bearer(third.accessToken) });
  assert.equal(thirdGone.response.status, 401);
  const all = await api.DELETE("/api/sessions", { headers: bearer(access) });
  assert.equal(all.data?.code, "ALL_SESSIONS_REVOKE");
  const left = await api.GET("/api/admin/users/{user_id}/sessions", {
    params: { path: { user_id: user } },
    headers: service,
  });
  assert.deepEqual(left.data?.sessions, []);
  step("revoke all");
}

await main();
console.log("the TypeScript client's flow passed");
