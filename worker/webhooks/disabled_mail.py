"""The email that tells an organisation's admins an endpoint was disabled (410 Gone, or failing for 5 days),
beside the `endpoint.disabled` event: the event goes to the organisation's other endpoints, which may be
the very ones that are down, so a person is told too (as Standard Webhooks recommends)."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from store.db import transaction
from store.models import Member, Organisation, WebhookEndpoint
from store.services import members
from store.services.webhook_endpoints import shown_url
from worker.mailers import new_message
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

REASONS = {
    "gone": "it answered 410 Gone, which asks senders to stop",
    "failing": "every delivery to it failed for 5 days",
}


def compose(endpoint: WebhookEndpoint, organisation: Organisation, admin: Member, runtime: Runtime) -> EmailMessage:
    """The plain-text email to one admin: which endpoint, why, and how to turn it back on."""
    message = new_message(
        subject=f"A webhook endpoint of {organisation.name} was disabled",
        sender=runtime.mail_from,
        to=admin.email,
        tag="endpoint-disabled",
    )
    reason = REASONS.get(endpoint.disabled_reason or "", endpoint.disabled_reason or "deliveries failed")
    message.set_content(
        f"Hello {admin.display_name or admin.email},\n\n"
        f"deskbridge stopped sending webhooks to {shown_url(endpoint.url)} "
        f"(endpoint {endpoint.id}) because {reason}.\n\nIts events are kept. Once the receiver works again, "
        f"enable it with POST /v1/webhooks/{endpoint.id}/enable (or in the console at "
        f"{runtime.public_base_url.rstrip('/')}/console/admin/webhooks); what failed meanwhile can be sent "
        f"again with POST /v1/webhooks/{endpoint.id}/deliveries/replay-failed.\n"
    )
    return message


def tell_admins(runtime: Runtime, endpoint_id: int) -> int:
    """Email every active admin of the endpoint's organisation that it is disabled; returns how many.

    Called after the attempt that disabled it was committed. Best effort: a mail server that refuses is
    logged (the event, and the endpoint's `disabled_at`, say it all the same).
    """
    try:
        with transaction(runtime.session_factory) as session:
            endpoint = session.get(WebhookEndpoint, endpoint_id)
            if endpoint is None or endpoint.disabled_at is None:
                return 0
            organisation = session.get_one(Organisation, endpoint.organisation_id)
            admins = members.admins_to_tell(session, endpoint.organisation_id)
            messages = [compose(endpoint, organisation, admin, runtime) for admin in admins]
        for message in messages:
            runtime.mailer.send(message)
    except Exception:
        logger.exception("could not email the admins that endpoint %s was disabled", endpoint_id)
        return 0
    logger.info("endpoint %s disabled: %d admins emailed", endpoint_id, len(messages))
    return len(messages)
