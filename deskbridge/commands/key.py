"""`deskbridge key new`: a key for DESKBRIDGE_SECRET_KEY (secrets at rest)."""

from __future__ import annotations

import typer

from deskbridge.commands.common import err
from store.secret_box import SecretBox

app = typer.Typer(help="Keys for the secrets deskbridge keeps encrypted (DESKBRIDGE_SECRET_KEY).", no_args_is_help=True)


@app.command("new")
def new() -> None:
    """Print a new random Fernet key, alone on stdout (`export DESKBRIDGE_SECRET_KEY=$(deskbridge key new)`).

    To rotate: put the new key first and keep the old ones after it, comma-separated
    (`DESKBRIDGE_SECRET_KEY=NEW,OLD`); secrets made with an old key stay readable.
    """
    err().print("A new key; give every deskbridge process the same one, and back it up.", markup=False)
    typer.echo(SecretBox.generate_key())
