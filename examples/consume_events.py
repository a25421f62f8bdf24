"""Follow sessionsvc's event stream with a consumer group and print each event as JSON.

    python examples/consume_events.py --url redis://localhost:6379/0
    python examples/consume_events.py --url unix://$PWD/var/valkey.sock   # `make run`'s Valkey
    python examples/consume_events.py --cluster --url redis://node1:7000  # any Cluster node

A websocket gateway or a cache would close the connections of, or evict, the
sessions named in `session.revoked`, `sessions.revoked_all`, `session.evicted`
and `session.theft_detected` events. Each consumer group gets every event once;
run several consumers in one group to share the work.
"""

from __future__ import annotations

import argparse
import json
import sys

import redis


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="redis://localhost:6379/0")
    parser.add_argument("--cluster", action="store_true", help="--url is a Cluster node")
    parser.add_argument("--stream", default="sessionsvc:events")
    parser.add_argument("--group", default="example")
    parser.add_argument("--consumer", default="consumer-1")
    parser.add_argument("--count", type=int, default=0, help="stop after this many (0: never)")
    parser.add_argument("--block", type=int, default=5000, help="ms to wait for new events")
    args = parser.parse_args(argv)

    connect = redis.RedisCluster.from_url if args.cluster else redis.Redis.from_url
    client = connect(args.url, decode_responses=True)
    try:
        # "0": a new group starts with the events already in the stream.
        client.xgroup_create(args.stream, args.group, id="0", mkstream=True)
    except redis.ResponseError as error:
        if "BUSYGROUP" not in str(error):
            raise
    seen = 0
    while not args.count or seen < args.count:
        # ">" asks for events never delivered to this group.
        replies = client.xreadgroup(
            args.group, args.consumer, {args.stream: ">"}, count=100, block=args.block
        )
        if not replies:
            if args.count:
                return 1  # the events we waited for did not come
            continue
        for _stream, events in replies:
            for event_id, fields in events:
                event = fields | {"sessionIds": fields["sessionIds"].split(",")}
                print(json.dumps({"id": event_id, **event}), flush=True)
                client.xack(args.stream, args.group, event_id)  # handled: don't redeliver
                seen += 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
