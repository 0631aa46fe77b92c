"""API tokens. Members create, list and revoke their own; admins may list and revoke any in the
organisation. The secret is shown once, in the creation response."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Response
from pydantic import Field

from api.deps import DB, ApiCaller
from api.errors import ApiError
from api.v1.common import RequestBody, Resource, Timestamp, is_admin, path_id, problems, query_id
from api.v1.pagination import Keyset, Page, Paging, fetch, page_of
from store.errors import NotFound
from store.models import ApiToken
from store.services import members, tokens

router = APIRouter(prefix="/tokens", tags=["tokens"])

KEYSET = Keyset("tokens", (ApiToken.id,))
TokenId = Annotated[int, path_id("The token's id.")]


# Named apart from the connections' rotated token (TokenOut): two models of one name would reach the
# OpenAPI document under their module paths, and client generators refuse the clash.
class ApiTokenOut(Resource):
    """A live API token. The secret is never shown again; the prefix tells tokens apart."""

    id: int
    member_id: int
    name: str
    prefix: str = Field(description="The first characters of the secret.")
    created_at: Timestamp
    last_used_at: Timestamp | None = Field(description="Roughly when it was last used (to the minute).")


class TokenCreated(ApiTokenOut):
    """A new token, with its secret: keep it now, it cannot be shown again."""

    secret: str = Field(description="Send as `Authorization: token <secret>`. Shown only this once.")


class TokenIn(RequestBody):
    """A name to tell the token apart later."""

    name: str = Field(default="", max_length=100)


@router.post("", status_code=201, summary="Create a token", responses=problems(400, 413, 415, 422))
def create_token(caller: ApiCaller, db: DB, body: TokenIn | None = None) -> TokenCreated:
    """Issue a new API token for yourself. The response holds the secret, which is never shown again.
    The body is optional: none is the same as `{}`."""
    body = body or TokenIn()
    token, secret = tokens.create(db, members.get(db, caller.organisation.id, caller.member.id), name=body.name)
    db.commit()
    return TokenCreated.model_validate({**ApiTokenOut.model_validate(token).model_dump(), "secret": secret})


@router.get("", summary="List tokens", responses=problems(404, 422))
def list_tokens(
    caller: ApiCaller,
    db: DB,
    paging: Paging,
    member_id: Annotated[int | None, query_id("Only this member's tokens (admins may name anyone).")] = None,
) -> Page[ApiTokenOut]:
    """Live tokens, by id: your own, or, for an admin, everyone's in the organisation. An unknown
    member is a 404."""
    if not is_admin(caller):
        if member_id not in (None, caller.member.id):
            raise ApiError(403, "Only admins can list other members' tokens.", code="admin_only")
        member_id = caller.member.id
    elif member_id is not None:
        members.get(db, caller.organisation.id, member_id)
    query = tokens.select_tokens(caller.organisation.id, member_id=member_id)
    rows, cursor = fetch(db, query, KEYSET, paging)
    return page_of([ApiTokenOut.model_validate(row) for row in rows], cursor)


@router.delete("/{token_id}", status_code=204, summary="Revoke a token", responses=problems(404))
def revoke_token(token_id: TokenId, caller: ApiCaller, db: DB) -> Response:
    """Revoke a token at once: your own, or any in the organisation as an admin. Other members'
    tokens are invisible to non-admins, so they answer 404 like unknown ones."""
    token = tokens.get(db, caller.organisation.id, token_id)
    if token.revoked_at is not None or (token.member_id != caller.member.id and not is_admin(caller)):
        raise NotFound(f"no token {token_id}")
    tokens.revoke(db, token)
    db.commit()
    return Response(status_code=204)
