"""The invitation email: a fresh accept token, the message, and the send."""

from __future__ import annotations

import logging
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid, parseaddr

from store.columns import utcnow
from store.db import transaction
from store.models import Invitation, Organisation
from store.services import members
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def accept_url(public_base_url: str, token: str) -> str:
    """The page where the invitee accepts (see api/invitation_page.py)."""
    return f"{public_base_url.rstrip('/')}/invitations/{token}"


def compose(invitation: Invitation, organisation: Organisation, link: str, sender: str) -> EmailMessage:
    """The invitation email, in plain text, with the accept link on a line of its own."""
    message = EmailMessage()
    message["Subject"] = f"You're invited to {organisation.name} on deskbridge"
    message["From"] = sender
    message["To"] = invitation.email
    # Mail without Date and Message-ID is often treated as spam.
    message["Date"] = format_datetime(utcnow())
    # The sender's domain, not make_msgid's default: that asks DNS for this host's name on every email.
    message["Message-ID"] = make_msgid("invitation", domain=parseaddr(sender)[1].rpartition("@")[2] or "deskbridge")
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
