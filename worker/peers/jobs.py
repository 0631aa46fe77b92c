"""The scheduler's poll of peer connections.

Peer platforms push nothing (Resource Guru's webhooks can be paused or fail), so each connection is
read whole at the calendar interval: its people, and everyone's events of the window. The sync is
the directory's `sync_connection` actor, which hands peer kinds to worker/peers/sync.py, so a sync
asked for from the API and one asked for here coalesce.
"""

from __future__ import annotations

from datetime import timedelta

from store.db import transaction
from store.kinds import PEER_PLATFORM
from store.services import connections, peer_envelopes
from worker.directory import jobs
from worker.peers import hooks
from worker.runtime import Runtime

# A delivery still waiting after this long lost the job that was to apply it.
STALLED_AFTER = timedelta(minutes=1)
# A replay older than this would be applied again; Resource Guru retries a failed delivery within hours.
KEEP_ENVELOPES = timedelta(days=7)


def poll(worker_runtime: Runtime) -> int:
    """Queue a sync of every peer connection whose last one is older than the calendar interval, and
    the application of Resource Guru deliveries left waiting by a lost job (a kept delivery is its
    own record: no follow-up is needed for `hooks.enqueue`)."""
    every = timedelta(seconds=worker_runtime.calendar_sync_seconds)
    with transaction(worker_runtime.session_factory) as session:
        due = connections.due_for_sync(session, every=every, capability=PEER_PLATFORM)
        wanted = [connection_id for connection_id in due if connections.request_sync(session, connection_id)]
        stalled = peer_envelopes.stalled(session, older_than=STALLED_AFTER)
    for connection_id in wanted:
        jobs.enqueue_sync(worker_runtime.queue, connection_id)
    for connection_id in stalled:
        hooks.enqueue(worker_runtime.queue, connection_id)
    return len(wanted)


def prune(worker_runtime: Runtime) -> int:
    """The scheduler's upkeep: forget Resource Guru deliveries applied more than a week ago."""
    with transaction(worker_runtime.session_factory) as session:
        return peer_envelopes.prune(session, older_than=KEEP_ENVELOPES)
