"""Resource Guru as a peer platform: OAuth 2.0 with rotating refresh, its people, their bookings and time off.

Wiring, in the composition root::

    app = OAuthApp(client_id, client_secret, redirect_uri)
    authorize_url(app, state=...)                       # where the admin grants access
    pair = exchange_code(app, code)                     # store it encrypted
    keeper = TokenKeeper(app, pair, on_refresh=store)   # store every new pair before it is used
    client = ResourceGuruClient(keeper, account)        # account: the Account URL ID
    reader = ResourceGuru(client)                       # a PeopleReader; reader.roster() for webhooks

    verify(secret, raw_body, request.headers.get(SIGNATURE_HEADER))  # before anything else
    parse(raw_body, roster)                             # an Envelope, applied once per envelope id
"""

from connectors.resourceguru.auth import (
    DEFAULT_BASE_URL,
    OAuthApp,
    TokenKeeper,
    TokenPair,
    authorize_url,
    exchange_code,
    refresh_tokens,
)
from connectors.resourceguru.client import ResourceGuruClient
from connectors.resourceguru.reader import ResourceGuru
from connectors.resourceguru.translate import Person, Roster
from connectors.resourceguru.webhooks import SIGNATURE_HEADER, Envelope, parse, sign, verify

__all__ = [
    "DEFAULT_BASE_URL",
    "SIGNATURE_HEADER",
    "Envelope",
    "OAuthApp",
    "Person",
    "ResourceGuru",
    "ResourceGuruClient",
    "Roster",
    "TokenKeeper",
    "TokenPair",
    "authorize_url",
    "exchange_code",
    "parse",
    "refresh_tokens",
    "sign",
    "verify",
]
