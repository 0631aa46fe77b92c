"""Dramatiq actors. Import only after `worker.broker.make_broker` has set the global broker.

Every actor is idempotent: Dramatiq delivers at least once.
"""

from __future__ import annotations

import dramatiq

from worker import invitations, runtime


@dramatiq.actor(queue_name="email", max_retries=10, min_backoff=5_000, max_backoff=600_000)
def send_invitation_email(invitation_id: int) -> None:
    """Email the accept link of a pending invitation (no-op if already sent or no longer pending)."""
    invitations.send(runtime.current(), invitation_id)
