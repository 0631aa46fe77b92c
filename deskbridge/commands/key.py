"""`deskbridge key`: keys for DESKBRIDGE_SECRET_KEY (secrets at rest), made and rotated."""

from __future__ import annotations

import typer
from sqlalchemy import select

from deskbridge.commands.common import err, fail, out, store
from deskbridge.settings import get_settings
from store.models import Connection, WebhookEndpoint
from store.secret_box import SecretBox, UndecryptableSecret

app = typer.Typer(help="Keys for the secrets deskbridge keeps encrypted (DESKBRIDGE_SECRET_KEY).", no_args_is_help=True)


@app.command("new")
def new() -> None:
    """Print a new random Fernet key, alone on stdout (`DESKBRIDGE_SECRET_KEY=$(deskbridge key new)`).

    To rotate: put the new key first and keep the old ones after it, comma-separated
    (`DESKBRIDGE_SECRET_KEY=NEW,OLD`); secrets made with an old key stay readable. `deskbridge key
    rotate` then re-encrypts them with the new key, after which the old key can go.
    """
    err().print("A new key; give every deskbridge process the same one, and back it up.", markup=False)
    typer.echo(SecretBox.generate_key())


@app.command("rotate")
def rotate() -> None:
    """Re-encrypt every stored secret (webhook signing secrets, connection credentials) with the first key of
    DESKBRIDGE_SECRET_KEY, in one transaction. If any cannot be decrypted, nothing changes and it says which."""
    from deskbridge.wiring import make_secret_box

    box = make_secret_box(get_settings())
    with store() as session:
        unreadable: list[str] = []
        count = 0
        for endpoint in session.scalars(select(WebhookEndpoint).order_by(WebhookEndpoint.id).with_for_update()):
            for column in ("secret_encrypted", "previous_secret_encrypted"):
                token = getattr(endpoint, column)
                if token is not None:
                    try:
                        setattr(endpoint, column, box.rotate(token))
                        count += 1
                    except UndecryptableSecret:
                        unreadable.append(f"webhook {endpoint.id}")
        for connection in session.scalars(select(Connection).order_by(Connection.id).with_for_update()):
            if connection.credentials_encrypted is not None:
                try:
                    connection.credentials_encrypted = box.rotate(connection.credentials_encrypted)
                    count += 1
                except UndecryptableSecret:
                    unreadable.append(f"connection {connection.id}")
        if unreadable:  # raising rolls the whole transaction back
            fail(
                f"no key of DESKBRIDGE_SECRET_KEY opens the secrets of {', '.join(sorted(set(unreadable)))}; "
                "nothing was re-encrypted. Add the key they were made with (after the new one) and run this again."
            )
    out().print(f"Re-encrypted {count} secret(s) with the first key; the older keys can now be removed.", markup=False)
