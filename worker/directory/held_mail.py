"""The email that tells an organisation's admins a connection holds removals for them, beside the
`connection.removals_held` event (as disabled_mail does for a disabled endpoint): a sync would have
removed more people within an hour than the connection's removal limit allows."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from store.db import transaction
from store.models import Connection, Member, Organisation, SyncPlan
from store.services import follow_ups, members, plans
from worker.mailers import new_message
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def compose(
    connection: Connection, plan: SyncPlan, organisation: Organisation, admin: Member, runtime: Runtime
) -> EmailMessage:
    """The plain-text email to one admin: which connection, how many people, and how to approve or reject."""
    removals = plan.changes.get("people", {}).get("removed", [])
    message = new_message(
        subject=f"{connection.name}: {len(removals)} removals wait for your approval",
        sender=runtime.mail_from,
        to=admin.email,
        tag="removals-held",
    )
    shown = "".join(f"  - {item['email']}\n" for item in removals[:20])
    more = f"  … and {len(removals) - 20} more\n" if len(removals) > 20 else ""
    path = f"/v1/connections/{connection.id}/plans/{plan.public_id}"
    message.set_content(
        f"Hello {admin.display_name or admin.email},\n\n"
        f"A sync of {connection.name} ({connection.kind.value}, connection {connection.id}) of {organisation.name} "
        f"would remove {len(removals)} people, more than its removal limit allows within an hour. "
        f"Everything else was applied; these people keep their membership, bookings and tokens until you "
        f"decide:\n\n{shown}{more}\n"
        f"Read the plan with GET {path} (or `deskbridge plan show {connection.id} {plan.public_id}`). "
        f"Approve with POST {path}/apply (`deskbridge plan apply {connection.id} {plan.public_id}`), or "
        f"reject with POST {path}/reject: they stay, and are not proposed again until the directory "
        f"changes them.\nConsole: {runtime.public_base_url.rstrip('/')}/console/admin/connections\n"
    )
    return message


def tell_admins(runtime: Runtime, connection_id: int) -> int:
    """Email every active admin of the connection's organisation about its held plan; returns how many.

    Only while the connection's `REMOVALS_HELD_MAIL` follow-up is owed (so one hold is one email, however
    many jobs are queued); clears it once sent, or when nothing is held any more.
    A mail server that refuses raises, so the queue (and then the follow-up sweep) tries again.
    """
    with transaction(runtime.session_factory) as session:
        owed = follow_ups.seen(session, follow_ups.REMOVALS_HELD_MAIL, connection_id)
        if owed is None:
            return 0  # sent already, or more removals joined a plan the admins were told about
        connection = session.get(Connection, connection_id)
        plan = plans.held_plan(session, connection) if connection is not None else None
        if connection is None or plan is None:
            follow_ups.done(session, follow_ups.REMOVALS_HELD_MAIL, connection_id, owed)
            return 0
        organisation = session.get_one(Organisation, connection.organisation_id)
        admins = members.admins_to_tell(session, connection.organisation_id)
        messages = [compose(connection, plan, organisation, admin, runtime) for admin in admins]
    for message in messages:
        runtime.mailer.send(message)
    with transaction(runtime.session_factory) as session:
        follow_ups.done(session, follow_ups.REMOVALS_HELD_MAIL, connection_id, owed)
    logger.info("connection %d holds removals: %d admins emailed", connection_id, len(messages))
    return len(messages)
