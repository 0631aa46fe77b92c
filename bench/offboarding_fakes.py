"""The directories of `bench.offboarding`, in a process of their own: `python -m bench.offboarding_fakes --people N`.

The fake Microsoft identity platform + Graph (tests/fakes/graph, over TLS with a fresh test CA) and the fake
Google (tests/fakes/google.py: token endpoint, Admin SDK, watch channels), each filled with N people. Inside
the bench they would share its GIL and their CPU would be counted as ours. Driven by one JSON command per
line on stdin, each answered by one JSON line on stdout:

- on start (no command): where each listens and how to sign in (see `main`);
- {"op": "offboard", "source": "graph" | "google", "number": n}: person n is disabled (Graph:
  `accountEnabled` false, then a change notification on the users subscription POSTed to the API, as Graph
  sends it; Google: suspended, which the fake's delivery thread announces on every users watch channel at
  once); answers {"at": monotonic, "wall": epoch seconds} taken just before the notification left;
- {"op": "requests"}: how many requests each fake served;
- {"op": "quit"}.

Graph checks the notification URL with its validation handshake when the bench opens the subscriptions
(the API must be up by then), as the real one does.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from tests.fakes.google import FakeGoogle
from tests.fakes.graph import App, FakeGraph
from tests.fakes.tls import make_tls

TENANT_ID = "offboarding-tenant"
CLIENT_ID = "offboarding-app"
SECRET = "offboarding~secret"  # the fake's own app registration
GRAPH_DOMAIN = "contoso.example"
GOOGLE_DOMAIN = "acme.example"


def graph_user_id(number: int) -> str:
    """A GUID-shaped object id, as Graph's are."""
    return f"{number:08x}-0000-4000-8000-{number:012x}"


def address(source: str, number: int) -> str:
    """Person `number`'s address at `source` (what the membership is named by)."""
    return f"person{number:04d}@{GRAPH_DOMAIN if source == 'graph' else GOOGLE_DOMAIN}"


class Directories:
    """Both fakes, filled with the same number of people."""

    def __init__(self, people: int) -> None:
        tls = make_tls(Path(tempfile.mkdtemp(prefix="bench-offboarding-")))
        self.ca_bundle = str(tls.ca_bundle)
        self.graph = FakeGraph(tls, tenant_id=TENANT_ID)
        self.graph.identity.apps[CLIENT_ID] = App(CLIENT_ID, secret=SECRET)
        self.graph.directory.add_users(
            [(graph_user_id(n), address("graph", n), address("graph", n)) for n in range(1, people + 1)]
        )
        self.google = FakeGoogle(domain=GOOGLE_DOMAIN, token_ttl=24 * 3600)
        self.google_ids = {
            n: self.google.add_user(address("google", n), "Person", str(n), notify=False) for n in range(1, people + 1)
        }

    def start(self) -> dict[str, Any]:
        self.graph.start()
        self.google.start()
        return {
            "graph": {
                "authority": self.graph.authority_host,
                "graph_url": self.graph.graph_url,
                "ca_bundle": self.ca_bundle,
                "tenant_id": TENANT_ID,
                "client_id": CLIENT_ID,
                "secret": SECRET,
            },
            "google": {
                "base_url": self.google.base_url,
                "admin_email": self.google.admin_email,
                "service_account_key": self.google.service_account_info(),
            },
        }

    def offboard(self, source: str, number: int) -> dict[str, float]:
        """Disable person `number` and let the directory tell the API; when the notification left."""
        if source == "graph":
            self.graph.directory.disable_user(graph_user_id(number))
            subscription = next(item for item in self.graph.subscriptions.items.values() if item.resource == "users")
            at, wall = time.monotonic(), time.time()
            status = self.graph.subscriptions.notify(subscription.id)
            if status != 202:
                raise RuntimeError(f"the API answered Graph's notification with {status}")
            return {"at": at, "wall": wall}
        at, wall = time.monotonic(), time.time()
        self.google.suspend_user(self.google_ids[number])  # the delivery thread posts to every channel
        return {"at": at, "wall": wall}

    def stop(self) -> None:
        self.graph.stop()
        self.google.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.offboarding_fakes", description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=200)
    args = parser.parse_args(argv)
    directories = Directories(args.people)

    def say(answer: Any) -> None:
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()

    say(directories.start())
    for line in sys.stdin:
        command = json.loads(line)
        op = command.get("op")
        try:
            if op == "offboard":
                say(directories.offboard(str(command["source"]), int(command["number"])))
            elif op == "requests":
                say({"graph": len(directories.graph.requests), "google": len(directories.google.requests)})
            elif op == "quit":
                break
            else:
                say({"error": f"unknown op {op!r}"})
        except Exception as error:  # the bench reads the error and stops
            say({"error": f"{type(error).__name__}: {error}"})
    directories.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
