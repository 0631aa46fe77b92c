"""The fake Graph of `bench.directory`, in a process of its own: `python -m bench.directory_graph --users N`.

The fake (tests/fakes/graph) answers in Python; run inside the bench it would share the bench's GIL
and its CPU would be counted as ours. Here it runs alone, over TLS on 127.0.0.1 with a fresh test CA,
and is driven by one JSON command per line on stdin, each answered by one JSON line on stdout:

- on start (no command): {"port", "ca_bundle", "tenant_id", "client_id", "secret", "users"};
- {"op": "changes", "renames": R, "disables": D, "new": N, "deletions": X}: R display names changed,
  D accounts disabled, N users created, X deleted (half to the recycle bin, half for good), all on
  distinct existing users; answers what it did;
- {"op": "expire"}: every delta and skip token answers 410 from now on (`Directory.expire_tokens`);
- {"op": "requests"}: how many Graph requests were served;
- {"op": "quit"}.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import make_tls

TENANT_ID = "bench-tenant"
CLIENT_ID = "bench-app"
SECRET = "bench~secret"  # the fake's own app registration
DOMAIN = "contoso.example"


def user_id(number: int) -> str:
    """A GUID-shaped object id, as Graph's are (fixed width, so ids sort like numbers)."""
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def upn(number: int) -> str:
    return f"user{number:06d}@{DOMAIN}"


def fill(fake: FakeGraph, users: int) -> None:
    """`users` enabled members with a mailbox, in one go (`Directory.add_users`)."""
    fake.directory.add_users([(user_id(n), upn(n), upn(n)) for n in range(1, users + 1)])


def changes(fake: FakeGraph, users: int, wave: int, renames: int, disables: int, new: int, deletions: int) -> Any:
    """Apply one wave of changes to distinct users, spread over the tenant; returns the counts made."""
    directory = fake.directory
    touched = renames + disables + deletions
    if touched > users:
        raise ValueError(f"{touched} changes need at least as many users; the tenant has {users}")
    # Spread evenly over the tenant, so the changes land on many pages of a listing, as they would.
    step = max(1, users // max(1, touched))
    picked = [1 + (i * step + wave) % users for i in range(touched)]
    live = [n for n in dict.fromkeys(picked) if user_id(n) in directory.users]
    made = {"renames": 0, "disables": 0, "new": 0, "deletions": 0}
    for n in live[:renames]:
        directory.update_user(user_id(n), displayName=f"Renamed {n} (wave {wave})")
        made["renames"] += 1
    for n in live[renames : renames + disables]:
        directory.disable_user(user_id(n))
        made["disables"] += 1
    for index, n in enumerate(live[renames + disables : renames + disables + deletions]):
        if index % 2:
            directory.hard_delete_user(user_id(n))
        else:
            directory.soft_delete_user(user_id(n))
        made["deletions"] += 1
    first = 10_000_000 + wave * 100_000  # out of the way of the initial users' numbers
    for n in range(first, first + new):
        directory.add_user(user_id(n), upn(n), display_name=f"New {n}", mail=upn(n))
        made["new"] += 1
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.directory_graph", description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--page-size", type=int, default=999, help="users per delta page (Graph's max is 999)")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="bench-graph-"))
    tls = make_tls(folder)
    fake = FakeGraph(tls, tenant_id=TENANT_ID, page_size=args.page_size)
    fake.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
    fake.subscriptions.validate_urls = False
    fill(fake, args.users)
    fake.start()

    def say(answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    say(
        {
            "port": fake.port,
            "authority": fake.authority_host,
            "graph_url": fake.graph_url,
            "ca_bundle": str(tls.ca_bundle),
            "tenant_id": TENANT_ID,
            "client_id": CLIENT_ID,
            "secret": SECRET,
            "users": args.users,
        }
    )
    wave = 0
    for line in sys.stdin:
        command = json.loads(line)
        op = command.get("op")
        if op == "changes":
            wave += 1
            kinds = {key: int(command.get(key, 0)) for key in ("renames", "disables", "new", "deletions")}
            say(changes(fake, args.users, wave, **kinds))
        elif op == "expire":
            fake.directory.expire_tokens()
            say({"expired": True})
        elif op == "requests":
            say({"requests": len(fake.requests)})
        elif op == "quit":
            break
        else:
            say({"error": f"unknown op {op!r}"})
    fake.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
