"""The fake Resource Guru of `bench.resourceguru_hooks`, in a process of its own.

    python -m bench.resourceguru_fake --people 20 --today 2026-11-21

tests/fakes/resourceguru.py on 127.0.0.1 (its CPU is not the bench's, nor the worker's), holding
`people` human resources (and a meeting room), driven by one JSON command per line on stdin, each
answered by one JSON line on stdout:

- on start (no command): where it listens, the account, the OAuth app, a token pair issued through
  its own authorization-code grant, and the people ({id, email});
- {"op": "payloads", "count": N, "path": P}: N webhook payloads written to P, one JSON object a line,
  each the object as the fake holds it with `action` and `type` added (`FakeResourceGuru.payload`),
  made in this order, over and over: six bookings created (timed, one to eight hours, on a day of the
  next fortnight, for one person; every tenth for two), two of them updated (moved a day later, new
  `updated_at`), one deleted, one downtime (a day off) created;
- {"op": "requests"}: how many API requests were served (the workers' roster reads);
- {"op": "quit"}.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.fakes.resourceguru import FakeResourceGuru

ACCOUNT = "bench-corp"
DOMAIN = "example.com"
SEED = 20_261_121


def make_payloads(fake: FakeResourceGuru, people: list[int], count: int, today: date) -> list[dict[str, Any]]:
    """`count` payloads in the order described in the module docstring."""
    rng = random.Random(SEED)
    payloads: list[dict[str, Any]] = []
    live: list[int] = []  # bookings created and not deleted
    step = 0
    while len(payloads) < count:
        slot = step % 10
        step += 1
        if slot < 6 or not live:
            day = (today + timedelta(days=rng.randrange(14))).isoformat()
            who = rng.sample(people, 2 if step % 10 == 0 else 1)
            booking = fake.add_booking(
                who, day, day, duration=60 * rng.randrange(1, 9), start_time=60 * rng.randrange(8, 12),
                details=f"Project {rng.randrange(100)}",
            )  # fmt: skip
            live.append(booking["id"])
            payloads.append(fake.payload("bookings", booking["id"], "create"))
        elif slot < 8:
            booking_id = rng.choice(live)
            item = fake.objects["bookings"][booking_id]
            moved = (date.fromisoformat(item["start_date"]) + timedelta(days=1)).isoformat()
            fake.update("bookings", booking_id, start_date=moved, end_date=moved)
            payloads.append(fake.payload("bookings", booking_id, "update"))
        elif slot == 8:
            booking_id = live.pop(rng.randrange(len(live)))
            gone = fake.delete("bookings", booking_id)
            payloads.append(fake.payload("bookings", booking_id, "delete", gone))
        else:
            day = (today + timedelta(days=rng.randrange(14))).isoformat()
            downtime = fake.add_downtime([rng.choice(people)], day, day, details="Day off")
            payloads.append(fake.payload("downtimes", downtime["id"], "create"))
    return payloads


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.resourceguru_fake", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=20)
    parser.add_argument("--today", type=date.fromisoformat, default=datetime.now(UTC).date())
    args = parser.parse_args(argv)
    # The roster is read once a minute by each worker process: the budget never runs out here.
    fake = FakeResourceGuru(account=ACCOUNT, rate_limit=10_000)
    people = [
        fake.add_resource(f"Person{n:03d}", "Bench", f"person{n:03d}@{DOMAIN}", timezone="London")["id"]
        for n in range(args.people)
    ]
    fake.add_resource("Room", "One", None, type_id=2)
    status, tokens = fake.token(
        {
            "grant_type": "authorization_code",
            "code": fake.issue_code(),
            "redirect_uri": fake.redirect_uri,
            "client_id": fake.client_id,
            "client_secret": fake.client_secret,
        }
    )
    assert status == 200, tokens

    def say(answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    with fake:
        say(
            {
                "base_url": fake.base_url,
                "account": fake.account,
                "client_id": fake.client_id,
                "client_secret": fake.client_secret,
                "redirect_uri": fake.redirect_uri,
                "access_token": tokens["access_token"],
                "refresh_token": tokens["refresh_token"],
                "expires_in": tokens["expires_in"],
                "people": [{"id": rid, "email": fake.objects["resources"][rid]["email"]} for rid in people],
            }
        )
        for line in sys.stdin:
            command = json.loads(line)
            op = command.get("op")
            if op == "payloads":
                payloads = make_payloads(fake, people, int(command["count"]), args.today)
                with Path(command["path"]).open("w") as out:
                    for payload in payloads:
                        out.write(json.dumps(payload) + "\n")
                say({"payloads": len(payloads)})
            elif op == "requests":
                with fake.lock:
                    say({"requests": len(fake.requests), "throttled": fake.throttled})
            elif op == "quit":
                break
            else:
                say({"error": f"unknown op {op!r}"})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
