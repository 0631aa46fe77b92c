"""Console sessions and sign-in links in the store, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.errors import NotAllowed, NotFound
from store.models import Member, MemberStatus, SignInLink
from store.services import console_sessions, members, restores, sign_in_links, tokens
from tests.conftest import make_org


def _member(session: Session, member_id: int) -> Member:
    return session.get_one(Member, member_id)


def test_a_session_lasts_until_it_expires_ends_or_its_member_goes(session_factory: sessionmaker[Session]) -> None:
    acme = make_org(session_factory)
    with transaction(session_factory) as db:
        secret = console_sessions.start(db, _member(db, acme.member.id))
        old = console_sessions.start(db, _member(db, acme.member.id), now=utcnow() - timedelta(hours=13))
        ended = console_sessions.start(db, _member(db, acme.member.id))
    with transaction(session_factory) as db:
        signed_in = console_sessions.resolve(db, secret)
        assert signed_in is not None
        assert signed_in.member.id == acme.member.id
        assert console_sessions.resolve(db, old) is None  # expired
        assert console_sessions.resolve(db, secret + "x") is None
        assert console_sessions.resolve(db, "nothing") is None
        console_sessions.end(db, ended)
    with transaction(session_factory) as db:
        assert console_sessions.resolve(db, ended) is None
        assert console_sessions.prune(db) == 1  # the expired one
        members.remove(db, _member(db, acme.member.id))
    with session_factory() as db:
        assert console_sessions.resolve(db, secret) is None


def test_a_removal_ends_sessions_for_good_even_when_it_is_undone(session_factory: sessionmaker[Session]) -> None:
    """Restoring a member brings back their membership, not the sessions the removal ended."""
    acme = make_org(session_factory)
    with transaction(session_factory) as db:
        before = console_sessions.start(db, _member(db, acme.member.id))
    with transaction(session_factory) as db:
        members.remove(db, _member(db, acme.member.id))
    with transaction(session_factory) as db:
        restores.restore(db, _member(db, acme.member.id))
    with transaction(session_factory) as db:
        assert _member(db, acme.member.id).status is MemberStatus.ACTIVE
        assert console_sessions.resolve(db, before) is None
        after = console_sessions.start(db, _member(db, acme.member.id))
    with session_factory() as db:
        assert console_sessions.resolve(db, after) is not None  # a new sign-in works


def test_a_token_session_ends_with_its_token(session_factory: sessionmaker[Session]) -> None:
    acme = make_org(session_factory)
    with transaction(session_factory) as db:
        member = _member(db, acme.member.id)
        token, _ = tokens.create(db, member)
        secret = console_sessions.start(db, member, api_token_id=token.id)
        by_link = console_sessions.start(db, member)
    with transaction(session_factory) as db:
        assert console_sessions.resolve(db, secret) is not None
        tokens.revoke(db, tokens.get(db, acme.organisation.id, token.id))
    with session_factory() as db:
        assert console_sessions.resolve(db, secret) is None
        assert console_sessions.resolve(db, by_link) is not None  # a link's session does not hang on a token


def test_csrf_tokens_differ_by_session() -> None:
    assert console_sessions.csrf_token("dcs_a") != console_sessions.csrf_token("dcs_b")
    assert console_sessions.csrf_token("dcs_a") == console_sessions.csrf_token("dcs_a")


def test_links_are_made_per_membership_and_not_more_than_once_a_minute(session_factory: sessionmaker[Session]) -> None:
    acme, other = make_org(session_factory, "Acme"), make_org(session_factory, "Other")
    with transaction(session_factory) as db:
        members.add(db, other.organisation.id, acme.member.email)  # one person in two organisations
        invited = members.invite(db, acme.organisation.id, "pending@acme.example")
        first = sign_in_links.request(db, acme.member.email.upper())
        again = sign_in_links.request(db, acme.member.email)
        later = sign_in_links.request(db, acme.member.email, now=utcnow() + timedelta(minutes=2))
        nobody = sign_in_links.request(db, invited.email)  # not active yet: no link
        assert len(first) == 2
        assert again == []
        assert len(later) == 2
        assert nobody == []
        assert sign_in_links.request(db, "not an address") == []


def test_a_link_works_once_even_when_two_use_it_at_once(session_factory: sessionmaker[Session]) -> None:
    acme = make_org(session_factory)
    with transaction(session_factory) as db:
        [link_id] = sign_in_links.request(db, acme.member.email)
        link = db.get_one(SignInLink, link_id)
        token = sign_in_links.issue_token(db, link)
        assert token is not None
        sign_in_links.mark_sent(link)
        assert sign_in_links.issue_token(db, link) is None  # sent: a redelivered job mails nothing
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def use() -> None:
        barrier.wait()
        try:
            with transaction(session_factory) as db:
                sign_in_links.redeem(db, token)
            outcomes.append("signed in")
        except NotAllowed:
            outcomes.append("refused")

    threads = [threading.Thread(target=use) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) == ["refused", "signed in"]
    with session_factory() as db, pytest.raises(NotAllowed, match="used already"):
        sign_in_links.redeem(db, token)


def test_expired_unknown_and_removed_links_do_not_sign_in(session_factory: sessionmaker[Session]) -> None:
    acme = make_org(session_factory)
    past = utcnow() - timedelta(minutes=16)
    with transaction(session_factory) as db:
        [old_id] = sign_in_links.request(db, acme.member.email, now=past)
        [admin_id] = sign_in_links.request(db, acme.admin.email)
        old = sign_in_links.issue_token(db, db.get_one(SignInLink, old_id), now=past)
        admins = sign_in_links.issue_token(db, db.get_one(SignInLink, admin_id))
        assert sign_in_links.issue_token(db, db.get_one(SignInLink, old_id)) is None  # expired: not mailed
    assert old is not None
    assert admins is not None
    with session_factory() as db:
        with pytest.raises(NotAllowed, match="expired"):
            sign_in_links.redeem(db, old)
        with pytest.raises(NotFound):
            sign_in_links.redeem(db, "nope")
    with transaction(session_factory) as db:
        members.add(db, acme.organisation.id, "second-admin@acme.example", role=acme.admin.role)
        members.remove(db, _member(db, acme.admin.id))
    with session_factory() as db, pytest.raises(NotAllowed, match="no longer active"):
        sign_in_links.redeem(db, admins)


def test_a_link_read_by_two_requests_signs_in_only_the_first_to_use_it(
    session_factory: sessionmaker[Session],
) -> None:
    acme = make_org(session_factory)
    with transaction(session_factory) as db:
        [link_id] = sign_in_links.request(db, acme.member.email)
        token = sign_in_links.issue_token(db, db.get_one(SignInLink, link_id))
    assert token is not None
    with session_factory() as first, session_factory() as second:
        # Both have read it while unused (and hold it: the identity map would otherwise forget it).
        read = [sign_in_links.find(first, token), sign_in_links.find(second, token)]
        assert all(link is not None and link.used_at is None for link in read)
        sign_in_links.redeem(first, token)
        first.commit()
        with pytest.raises(NotAllowed, match="used already"):
            sign_in_links.redeem(second, token)


def test_expired_links_are_pruned_and_live_ones_kept(session_factory: sessionmaker[Session]) -> None:
    acme = make_org(session_factory)
    with transaction(session_factory) as db:
        old = sign_in_links.request(db, acme.member.email, now=utcnow() - sign_in_links.LINK_LIFETIME * 2)
        live = sign_in_links.request(db, acme.member.email)
    with transaction(session_factory) as db:
        assert sign_in_links.prune(db) == len(old)
    with session_factory() as db:
        assert sorted(db.scalars(select(SignInLink.id))) == sorted(live)
