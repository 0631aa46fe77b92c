"""The console's sign-in email: a fresh link token, the message, and the send (the invitations' mail path)."""

from __future__ import annotations

import logging
from email.message import EmailMessage

from store.db import transaction
from store.models import Member, Organisation, SignInLink
from store.services import sign_in_links
from worker.mailers import new_message
from worker.runtime import Runtime

logger = logging.getLogger(__name__)


def link_url(public_base_url: str, token: str) -> str:
    """The console page that signs the person in (see api/console/sign_in.py)."""
    return f"{public_base_url.rstrip('/')}/console/sign-in/link/{token}"


def compose(member: Member, organisation: Organisation, link: str, sender: str) -> EmailMessage:
    """The sign-in email, in plain text, with the link on a line of its own."""
    message = new_message(
        subject=f"Sign in to {organisation.name} on deskbridge", sender=sender, to=member.email, tag="sign-in"
    )
    minutes = int(sign_in_links.LINK_LIFETIME.total_seconds() // 60)
    message.set_content(
        f"Hello,\n\nSomeone asked to sign in to the {organisation.name} console with this address."
        f"\n\nSign in here (the link works once, for {minutes} minutes):\n\n{link}\n\n"
        "If it was not you, ignore this email: nobody can sign in without the link.\n"
    )
    return message


def send(runtime: Runtime, link_id: int) -> bool:
    """Email a sign-in link once; False when there is nothing to send (sent, used or expired)."""
    with transaction(runtime.session_factory) as session:
        link = session.get(SignInLink, link_id)
        if link is None:
            return False
        token = sign_in_links.issue_token(session, link)
        if token is None:
            return False
        member = session.get_one(Member, link.member_id)
        organisation = session.get_one(Organisation, link.organisation_id)
        message = compose(member, organisation, link_url(runtime.public_base_url, token), runtime.mail_from)
    runtime.mailer.send(message)
    with transaction(runtime.session_factory) as session:
        sign_in_links.mark_sent(session.get_one(SignInLink, link_id))
    logger.info("sign-in link %s emailed", link_id)
    return True
