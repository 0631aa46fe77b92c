from __future__ import annotations

from datetime import timedelta

from sqlalchemy.orm import Session, sessionmaker

from store.columns import utcnow
from store.db import transaction
from store.errors import NotAllowed, NotFound
from store.models import ApiToken, Member
from store.services import members, tokens
from tests.conftest import Org, make_org
from tests.store.conftest import Outbox, live_tokens, member_in, refused


def _token(factory: sessionmaker[Session], token_id: int) -> ApiToken:
    with factory() as session:
        return session.get_one(ApiToken, token_id)


def test_create_keeps_only_the_hash(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        token, secret = tokens.create(session, member_in(session, acme), name=" laptop ")
    stored = _token(session_factory, token.id)
    assert secret.startswith("dsk_")
    assert len(secret) > 40
    assert (stored.name, stored.prefix) == ("laptop", secret[:12])
    assert stored.token_hash == members.hash_secret(secret)
    assert secret not in stored.token_hash
    assert outbox.only("api_token.created") == {
        "token_id": token.id,
        "member_id": acme.member.id,
        "prefix": secret[:12],
    }


def test_removed_member_cannot_get_a_token(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        members.remove(session, member_in(session, acme))
    with refused(session_factory, NotAllowed) as attempt:
        tokens.create(attempt.session, member_in(attempt.session, acme))


def test_authenticate_finds_the_caller_and_writes_nothing(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        caller = tokens.authenticate(session, acme.member_token)
        assert not session.dirty
        assert not session.new
    assert caller is not None
    assert (caller.member.id, caller.organisation.id) == (acme.member.id, acme.organisation.id)
    assert _token(session_factory, caller.token_id).last_used_at is None


def test_record_use_stamps_the_tokens_given(session_factory: sessionmaker[Session], acme: Org) -> None:
    at = utcnow() - timedelta(seconds=5)
    with transaction(session_factory) as session:
        caller = tokens.authenticate(session, acme.member_token)
        assert caller is not None
        tokens.record_use(session, [caller.token_id], at)
        tokens.record_use(session, [], at)
    assert _token(session_factory, caller.token_id).last_used_at == at


def test_authenticate_refuses_an_invited_member(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        invitation = members.invite(session, acme.organisation.id, "newcomer@example.com")
        newcomer = session.get_one(Member, invitation.member_id)
        _, secret = tokens.create(session, newcomer)
    with transaction(session_factory) as session:
        assert tokens.authenticate(session, secret) is None


def test_authenticate_refuses_unknown_secret(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        assert tokens.authenticate(session, acme.member_token + "x") is None
        assert tokens.authenticate(session, "") is None


def test_revoke(session_factory: sessionmaker[Session], acme: Org, outbox: Outbox) -> None:
    with transaction(session_factory) as session:
        caller = tokens.authenticate(session, acme.member_token)
    assert caller is not None
    outbox.skip()
    with transaction(session_factory) as session:
        tokens.revoke(session, tokens.get(session, acme.organisation.id, caller.token_id))
    with transaction(session_factory) as session:
        assert tokens.authenticate(session, acme.member_token) is None
        assert [t.member_id for t in live_tokens(session, acme.organisation.id)] == [acme.admin.id]
    assert outbox.only("api_token.revoked") == {
        "token_id": caller.token_id,
        "member_id": acme.member.id,
        "prefix": acme.member_token[:12],
    }
    outbox.skip()
    with transaction(session_factory) as session:
        tokens.revoke(session, tokens.get(session, acme.organisation.id, caller.token_id))
    assert outbox.new() == []


def test_list_for_one_member(session_factory: sessionmaker[Session], acme: Org) -> None:
    with transaction(session_factory) as session:
        extra, _ = tokens.create(session, member_in(session, acme), name="second")
    make_org(session_factory, "Globex")
    with session_factory() as session:
        listed = live_tokens(session, acme.organisation.id, acme.member.id)
    assert [t.name for t in listed] == ["", "second"]
    assert listed[1].id == extra.id


def test_get_token_of_another_organisation_is_not_found(session_factory: sessionmaker[Session], acme: Org) -> None:
    globex = make_org(session_factory, "Globex")
    with transaction(session_factory) as session:
        caller = tokens.authenticate(session, acme.member_token)
    assert caller is not None
    with refused(session_factory, NotFound) as attempt:
        tokens.get(attempt.session, globex.organisation.id, caller.token_id)
