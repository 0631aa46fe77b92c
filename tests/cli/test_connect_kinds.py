"""`deskbridge connect <kind>` is built from the kind registry: every kind has its command, and a kind's options
come from its descriptor's models (a new kind needs no CLI edit), secrets only as variables or files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pytest
import typer
from pydantic import Field
from sqlalchemy.orm import Session, sessionmaker
from typer.testing import CliRunner

from connectors.kind import Capability, Cli, Flag, Kind, KindCredentials, KindSettings, OptionalText, Text
from connectors.kinds import KINDS
from deskbridge.commands import connect
from store.models import Connection
from tests.cli.conftest import count, failed, ok


class _Settings(KindSettings):
    site: Text = Field(description="The site's name.")
    rooms: Flag = Field(default=None, description="true: its rooms too.")
    floors: list[str] | None = Field(default=None, description="Floors to read.")


class _Credentials(KindCredentials):
    login: Annotated[OptionalText, Cli(plain=True)] = Field(default=None, description="The login.")
    token: OptionalText = Field(default=None, description="The API token.")
    key: Annotated[OptionalText, Cli(file="PEM")] = Field(default=None, description="A signing key.")


NEW = Kind(
    name="spaceplanner",
    title="Space Planner",
    settings=_Settings,
    credentials=_Credentials,
    credential_sets=(frozenset({"login", "token"}),),
    capabilities=frozenset({Capability.PEER_PLATFORM}),
)


def _help(kind: Kind) -> str:
    app = typer.Typer()
    app.command(kind.name)(connect.command(kind))
    app.command("other")(lambda: None)  # two commands: typer keeps the kind's name
    result = CliRunner().invoke(app, [kind.name, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.output


def test_a_new_kind_gets_its_options_from_its_models() -> None:
    shown = _help(NEW)
    for option, about in [
        ("--site", "The site's name."), ("--rooms", "true: its rooms too."), ("--floor ", "Floors to read."),
        ("--login", "The login."), ("--token-env", "The environment variable holding the API token."),
        ("--key ", "A signing key."),
    ]:  # fmt: skip
        assert option in shown
        assert about in shown
    assert "--token " not in shown  # a secret never stands on the command line
    assert "--scope-group" not in shown  # a peer platform is no directory read by polling
    assert "Connect Space Planner" in shown


@pytest.mark.parametrize("name", sorted(KINDS))
def test_every_kind_has_its_command(name: str) -> None:
    assert "Usage" in ok("connect", name, "--help").stdout


def test_a_secret_variable_that_is_not_set_is_said(
    factory: sessionmaker[Session], monkeypatch: pytest.MonkeyPatch
) -> None:
    ok("org", "create", "Acme")
    monkeypatch.delenv("UNSET_KADENCE", raising=False)
    result = failed("connect", "kadence", "--client-id", "kid", "--client-secret-env", "UNSET_KADENCE")
    assert "the environment variable UNSET_KADENCE is not set or empty" in result.stderr
    assert count(factory, Connection) == 0


def test_a_file_that_holds_no_key_is_named_not_quoted(factory: sessionmaker[Session], tmp_path: Path) -> None:
    ok("org", "create", "Acme")
    key = tmp_path / "key.json"
    key.write_text('{"type": "service_account", "private_key": "MIIE-secret-part"}')
    result = failed("connect", "google", "--admin-email", "a@acme.example", "--key-file", str(key))
    assert f"{key} lacks client_email, token_uri" in result.stderr
    assert "MIIE-secret-part" not in result.output
    assert count(factory, Connection) == 0
