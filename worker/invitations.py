"""The invitation email: a fresh accept token, the message, and the send."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from store.db import transaction
from store.models import Invitation, Organisation
from store.services import members
from worker.mailers import new_message
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def accept_url(public_base_url: str, token: str) -> str:
    """The page where the invitee accepts (see api/invitation_page.py)."""
    return f"{public_base_url.rstrip('/')}/invitations/{token}"


def compose(invitation: Invitation, organisation: Organisation, link: str, sender: str) -> EmailMessage:
    """The invitation email, in plain text, with the accept link on a line of its own."""
    message = new_message(
        subject=f"You're invited to {organisation.name} on deskbridge",
        sender=sender,
        to=invitation.email,
        tag="invitation",
    )
    message.set_content(
        f"Hello,\n\nYou have been invited to join {organisation.name} to book desks and see who is in the office."
        f"\n\nAccept the invitation here (the link works once and expires on "
        f"{invitation.expires_at:%d %B %Y}):\n\n{link}\n\nIf you did not expect this, ignore this email.\n"
    )
    return message


def send(runtime: Runtime, invitation_id: int) -> bool:
    """Send the email of a pending invitation once; False when there is nothing to send.

    The token is made and its hash committed before the send; the invitation is marked sent after.
    A crash between the two sends a second email whose link replaces the first: never none.
    """
    with transaction(runtime.session_factory) as session:
        invitation = session.get(Invitation, invitation_id)
        if invitation is None:
            return False
        token = members.issue_invitation_token(session, invitation)
        if token is None:
            return False
        organisation = session.get_one(Organisation, invitation.organisation_id)
        message = compose(invitation, organisation, accept_url(runtime.public_base_url, token), runtime.mail_from)
    runtime.mailer.send(message)
    with transaction(runtime.session_factory) as session:
        members.mark_invitation_sent(session, session.get_one(Invitation, invitation_id))
    logger.info("invitation %s emailed", invitation_id)
    return True
