"""`deskbridge connect <kind>`: a connection from the command line, one command per kind of the registry.

Each command's options are built from its kind's settings and credentials models (connectors/kind.py's
`Cli` hints where the rule does not fit; the help is each field's description), so a new kind needs no
edit here. Secrets are read from an environment variable (`--client-secret-env VAR`) or a file, never
from the command line (where shell history and `ps` would keep them), and never printed back. The one
exception is a SCIM connection's bearer token, printed once, alone on stdout, when the connection is
made. A feed's URL may be given as it is too (many are public); either way it is printed with its
scheme and host only. A kind whose connecting is more than its fields (Resource Guru's authorisation
code exchange) has a command written by hand (connect_peers.py), which the built one gives way to.
"""

from __future__ import annotations

import inspect
import os
import typing
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from connectors.ics import redact
from connectors.kind import Capability, Cli, Kind, KindSettings, ScopeSettings, cli_of
from connectors.kinds import KINDS, REGISTRY
from deskbridge.commands.common import OrgOption, err, fail, organisation, out, store
from deskbridge.settings import get_settings
from store.errors import NotFound
from store.models import ConnectionKind
from store.services import calendars as calendar_store
from store.services import connections, members

app = typer.Typer(
    help="Connect a directory people are synced from, a calendar, or a peer platform.", no_args_is_help=True
)

Name = Annotated[str | None, typer.Option("--name", help="What the connection is called; a default per kind.")]


def _create(
    org: str | None, kind: ConnectionKind, name: str, settings: dict[str, Any], credentials: dict[str, Any]
) -> tuple[int, str, str | None]:
    """Make the connection (and, for one that is a calendar, its calendar); its id, a summary and a SCIM token."""
    # Imported here: they bring the API and worker in, which other commands need not load.
    from api.v1.endpoints.connections import default_settings
    from deskbridge.wiring import make_secret_box

    box = make_secret_box(get_settings())
    with store() as session:
        chosen = organisation(session, org)
        email = settings.get("member_email")
        if email and members.find_by_email(session, chosen.id, email) is None:
            raise NotFound(f"{chosen.slug} has no member {email}")
        connection, token = connections.create(
            session,
            box,
            chosen.id,
            kind,
            name,
            settings=default_settings(kind.value, settings),
            credentials=credentials,
        )
        if calendar_store.reads_calendars(connection):
            # The calendars known now (a feed's one) are there for the worker's next calendar poll;
            # a directory's people get theirs after its sync.
            calendar_store.ensure(session, connection)
        what = REGISTRY.get(kind).title if REGISTRY.can(kind, Capability.ONE_CALENDAR) else f"{kind.value} directory"
        summary = f"Connected {what} {connection.name!r} to {chosen.slug} as connection {connection.id}."
        connection_id = connection.id
    return connection_id, summary, token


# The options of a kind's command, from its models.


@dataclass(frozen=True)
class _Option:
    """One option of a kind's command and where its value goes (`part`: settings, scope or credentials)."""

    param: str  # the function parameter typer fills
    flag: str  # "--tenant-id"
    part: str
    key: str
    shape: str  # "text", "flag", "list", "env" (a variable's name), "file"
    cli: Cli
    help: str | None
    required: bool = False
    default: Any = None

    def parameter(self) -> inspect.Parameter:
        kind = inspect.Parameter.KEYWORD_ONLY
        taken: Any = {"flag": bool, "list": list[str], "file": Path}.get(self.shape, str)
        shape = taken if self.required or self.shape == "flag" else taken | None
        metavar = "VAR" if self.shape == "env" else self.cli.file if self.shape == "file" else None
        option = typer.Option(self.flag, help=self.help, metavar=metavar, show_default=self.default is not None)
        default: Any = inspect.Parameter.empty if self.required else False if self.shape == "flag" else self.default
        return inspect.Parameter(self.param, kind, annotation=Annotated[shape, option], default=default)

    @property
    def shown(self) -> str:
        """The option as messages name it, with what it takes."""
        metavar = {"env": " VAR", "file": f" {self.cli.file}"}.get(self.shape, f" {self.key.upper()}")
        return self.flag + ("" if self.shape in ("flag", "list") else metavar)


def _shape(field: FieldInfo) -> str:
    """What a field takes on the command line: true or false (a flag), several values, or one."""
    types_ = [item for item in typing.get_args(field.annotation) or (field.annotation,) if item is not type(None)]
    if types_ == [bool]:
        return "flag"
    if any(typing.get_origin(item) is list for item in types_):
        return "list"
    return "text"


def _dashed(name: str) -> str:
    return name.replace("_", "-")


def _setting_options(model: type[BaseModel], part: str, prefix: str = "") -> list[_Option]:
    found = []
    for key, field in model.model_fields.items():
        if part == "settings" and key in KindSettings.model_fields:
            continue  # the scope and teams every kind takes: see `_options`
        cli, shape = cli_of(field), _shape(field)
        name = cli.option or _dashed(key.removesuffix("s") if shape == "list" else key)
        if prefix and shape == "list":
            name = prefix + name
        required = field.is_required() or cli.required
        found.append(
            _Option(f"{part}_{key}", f"--{name}", part, key, shape, cli, field.description, required, cli.default)
        )
    return found


def _credential_options(kind: Kind) -> list[_Option]:
    needed = kind.credential_sets[0] if len(kind.credential_sets) == 1 else frozenset()
    found = []
    for key, field in kind.credentials.model_fields.items():
        cli, about = cli_of(field), field.description
        required = key in needed and cli.env is None and not cli.either
        if cli.plain or cli.either:
            found.append(_credential(key, cli, "text", about, required and cli.plain))
        if cli.file is not None:
            found.append(_credential(key, cli, "file", about, required))
        elif not cli.plain:
            what = about or key.replace("_", " ")
            variable = f"The environment variable holding {what[:1].lower()}{what[1:]}"
            found.append(_credential(key, cli, "env", variable, required, cli.env))
    return found


def _credential(key: str, cli: Cli, shape: str, about: str | None, required: bool, default: Any = None) -> _Option:
    """A credential's option: `--name` (as given, or a file), or `--name-env` (a variable holding it)."""
    suffix = "_env" if shape == "env" else ""
    flag = f"--{cli.option or _dashed(key)}{_dashed(suffix)}"
    return _Option(f"credentials_{key}{suffix}", flag, "credentials", key, shape, cli, about, required, default)


def _options(kind: Kind) -> list[_Option]:
    """Every option of the kind's command: its own settings, the scope and teams where they mean something
    (a directory read or pushed), and its credentials."""
    found = _setting_options(kind.settings, "settings")
    directory = kind.can(Capability.READS_DIRECTORY)
    if directory:
        found += _setting_options(ScopeSettings, "scope", prefix="scope-")
    if directory or kind.can(Capability.DIRECTORY_PUSHED):
        field = KindSettings.model_fields["team_groups"]
        found.append(
            _Option("settings_team_groups", "--team-group", "settings", "team_groups", "list", Cli(), field.description)
        )
    return found + _credential_options(kind)


# Running a kind's command.


def _read_env(option: _Option, variable: str) -> str:
    value = os.environ.get(variable, "").strip()
    if not value:
        fail(f"the environment variable {variable} is not set or empty.")
    return value


def _read_file(option: _Option, path: Path) -> Any:
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as error:
        fail(f"cannot read {path}: {getattr(error, 'strerror', None) or 'not a text file'}.")
    return _parsed(option, text, where=str(path))


def _parsed(option: _Option, value: str, *, where: str | None = None) -> Any:
    """The value as the model takes it; its ValueError names the file or option, never the value."""
    if option.cli.parse is None:
        return value
    try:
        return option.cli.parse(value)
    except ValueError as error:
        fail(f"{where or option.flag} {error}.")


def _credentials(kind: Kind, options: list[_Option], given: dict[str, Any]) -> dict[str, Any]:
    """The credentials the options give, once they name one of the kind's credential sets whole."""
    mine = [option for option in options if option.part == "credentials"]
    by_key: dict[str, list[_Option]] = {}
    for option in mine:
        by_key.setdefault(option.key, []).append(option)
    named = {key for key, choices in by_key.items() if sum(given[option.param] is not None for option in choices) > 0}
    for choices in by_key.values():
        if len(choices) > 1 and sum(given[option.param] is not None for option in choices) != 1:
            fail(f"give either {' or '.join(option.shown for option in reversed(choices))}.")
    sets = [needed for needed in kind.credential_sets if needed]
    touched = [needed for needed in sets if needed & named]
    if sets and (len(touched) != 1 or not touched[0] <= named):
        if len(touched) == 1:
            missing = sorted(touched[0] - named)
            first = next(option.flag for option in mine if option.key in touched[0] & named)
            fail(f"{first} needs {', '.join(by_key[key][0].flag for key in missing)}.")
        phrases = [" with ".join(by_key[key][-1].shown for key in by_key if key in needed) for needed in sets]
        fail(f"give either {' or '.join(phrases)}.")
    credentials: dict[str, Any] = {}
    for option in mine:
        value = given[option.param]
        if value is None:
            continue
        if option.shape == "env":
            credentials[option.key] = _parsed(option, _read_env(option, value))
        elif option.shape == "file":
            credentials[option.key] = _read_file(option, value)
        else:
            credentials[option.key] = _parsed(option, value.strip())
    return credentials


def _settings(options: list[_Option], given: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The settings document the options give (left out: the kind's defaults apply), and as they were typed."""
    typed: dict[str, Any] = {}
    settings: dict[str, Any] = {}
    scope: dict[str, Any] = {}
    for option in options:
        value = given[option.param]
        if option.part == "credentials" or value in (None, False, []):
            continue
        target = scope if option.part == "scope" else settings
        if option.shape == "flag":
            target[option.key] = True
        elif option.shape == "list":
            target[option.key] = [_parsed(option, item) for item in value]
        else:
            typed[option.key] = value.strip()
            target[option.key] = _parsed(option, value.strip())
    settings["scope"] = scope
    return settings, typed


def _run(kind: Kind, options: list[_Option], given: dict[str, Any]) -> None:
    settings, typed = _settings(options, given)
    credentials = _credentials(kind, options, given)
    name = given["name"] or kind.name_for(typed)
    connection_id, summary, token = _create(given["org"], ConnectionKind(kind.name), name, settings, credentials)
    if token is not None:
        err().print(summary, markup=False, soft_wrap=True)
        err().print(f"SCIM base URL: {get_settings().base_url}/scim/v2", markup=False, soft_wrap=True)
        err().print("The bearer token below is shown only now; keep it safe.", markup=False)
        typer.echo(token)
        return
    if kind.shown_address is not None:
        summary += f" Address: {redact(str(credentials.get(kind.shown_address, '')))}"
    out().print(summary, markup=False, soft_wrap=True)
    for line in _next_steps(kind, connection_id):
        out().print(line, markup=False)


def _next_steps(kind: Kind, connection_id: int) -> list[str]:
    """What to do next, by what the kind does."""
    if kind.can(Capability.READS_DIRECTORY):
        return [f"Read the directory now with `deskbridge sync {connection_id}`."]
    if kind.can(Capability.TAKES_FILES):
        return [f"Preview an import with `deskbridge sync {connection_id} --file people.csv --dry-run`."]
    if kind.can(Capability.PEER_PLATFORM):
        return [f"Read its people and events now with `deskbridge sync {connection_id}`."]
    if kind.can(Capability.READS_CALENDARS):
        minutes = get_settings().calendar_sync_minutes
        return [f"The worker reads it at its next calendar poll, then every {minutes:g} minutes."]
    return []


def _about(kind: Kind) -> str:
    """The command's help: what a connection of the kind does."""
    does = {
        Capability.READS_DIRECTORY: "people synced from its directory",
        Capability.DIRECTORY_PUSHED: "people pushed to deskbridge",
        Capability.READS_CALENDARS: "calendars read (office days become bookings)",
        Capability.WRITES_CALENDARS: "bookings written into its calendars",
        Capability.PEER_PLATFORM: "its people and their days taken in",
    }
    said = [text for capability, text in does.items() if kind.can(capability)]
    return f"Connect {kind.title}: {', '.join(said)}."


def command(kind: Kind) -> Callable[..., None]:
    """The `deskbridge connect <kind>` command, its options built from the kind's models."""
    options = _options(kind)

    def connect(**given: Any) -> None:
        _run(kind, options, given)

    common = [
        inspect.Parameter("org", inspect.Parameter.KEYWORD_ONLY, annotation=OrgOption, default=None),
        inspect.Parameter("name", inspect.Parameter.KEYWORD_ONLY, annotation=Name, default=None),
    ]
    parameters = [option.parameter() for option in options]
    required = [item for item in parameters if item.default is inspect.Parameter.empty]
    optional = [item for item in parameters if item.default is not inspect.Parameter.empty]
    connect.__signature__ = inspect.Signature([*required, *common, *optional])  # type: ignore[attr-defined]
    connect.__doc__ = _about(kind)
    connect.__name__ = kind.name
    return connect


# Hand-written commands first (peer platforms whose connecting is more than their fields), then one per kind.
from deskbridge.commands.connect_peers import register as _register_peers  # noqa: E402

_register_peers(app)
_written = {info.name for info in app.registered_commands}
for _kind in KINDS.values():
    if _kind.name not in _written:
        app.command(_kind.name)(command(_kind))
