"""What a connection kind is: its typed settings and credentials, what it can do, and its connectors.

Each kind declares one `Kind` beside its connector (`connectors/<kind>/kind.py`); `connectors/kinds.py`
collects them. Every "which kinds can…" question is asked of `Capability` through the registry.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Protocol
from urllib.parse import urlsplit

import httpx
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, WithJsonSchema
from pydantic.fields import FieldInfo

from connectors.push import PushSubscriber
from connectors.records import (
    CalendarPage,
    CalendarReader,
    CalendarWriter,
    ConnectorError,
    DirectoryReader,
    PeopleReader,
    PersonReader,
    Window,
)


class Capability(enum.StrEnum):
    """What a kind of connection does; a kind has several."""

    READS_DIRECTORY = "reads_directory"  # we read its directory by polling, with a cursor
    DIRECTORY_PUSHED = "directory_pushed"  # its directory is pushed to us (SCIM requests, CSV imports)
    TAKES_FILES = "takes_files"  # its directory is whole files imported (CSV: sync/directory/imports.py)
    RECEIVES_PUSHES = "receives_pushes"  # it opens push channels to us (directory and calendars)
    READS_CALENDARS = "reads_calendars"  # its calendars are read (see `Kind.calendars_opt_in`)
    WRITES_CALENDARS = "writes_calendars"  # bookings are written into its calendars
    ONE_CALENDAR = "one_calendar"  # the connection is one person's (or resource's) calendar: `member_email`
    PEER_PLATFORM = "peer_platform"  # everyone's people and events at once (worker/peers)
    READS_PERSON = "reads_person"  # one person can be read alone and applied at once (`Kind.person_reader`)


@dataclass(frozen=True)
class Endpoints:
    """Where the outside systems live: the real services, or fakes in the tests."""

    microsoft_authority: str = "https://login.microsoftonline.com"
    graph_url: str = "https://graph.microsoft.com/v1.0"
    google_api_url: str = "https://admin.googleapis.com/"
    ca_bundle: str | None = None  # extra CA certificates to trust (a test CA); None: the system's
    # Peer platforms (worker/peers); None: the real service (Kadence: of the connection's region).
    wheniwork_url: str | None = None
    kadence_api_url: str | None = None
    kadence_token_url: str | None = None
    resourceguru_url: str | None = None
    # Whether URLs that come from input (a Google key's token_uri, a CalDAV server) may reach private
    # addresses: the deployment's setting (the embedded mode, tests with loopback fakes). Refused unless said.
    allow_private: bool = False


@dataclass(frozen=True)
class CalendarSource:
    """What one calendar is read from or written to: its connection's kind, settings and credentials, its address."""

    kind: str
    settings: dict[str, Any]
    credentials: dict[str, Any]
    address: str  # the person's sign-in name (Microsoft, Google); empty for a connection that is one calendar
    timezone: str  # the organisation's, for calendars that name none


class CalendarBatch(Protocol):
    """The readers of one connection's calendars for one job, sharing what the source lets them share (a
    sign-in, a pool of connections) and nothing beyond the job (`close`): the next job signs in afresh, so
    a revoked app or key is noticed at once. Used from several threads, one calendar on one thread."""

    def read(
        self, address: str, cursor: str | None, window: Window, first: dict[str, Any] | None
    ) -> Iterator[CalendarPage]:
        """The round of the calendar at `address` from `cursor`; `first`: its first answer, from `first_pages`."""
        ...

    def first_pages(self, calendars: Sequence[tuple[str, str | None]], window: Window) -> list[dict[str, Any] | None]:
        """The first answer of each (address, cursor)'s round where the source takes several requests at
        once; None where it was not fetched (that calendar's reader asks alone)."""
        ...

    def close(self) -> None:
        """Let go of what was shared."""
        ...


class OneByOne:
    """A batch that shares nothing: each calendar read by its own reader (the kind's `calendar_reader`)."""

    def __init__(
        self, factory: CalendarReaderFactory, source: CalendarSource, endpoints: Endpoints, http: httpx.Client
    ):
        self._factory, self._source, self._endpoints, self._http = factory, source, endpoints, http

    def read(
        self, address: str, cursor: str | None, window: Window, first: dict[str, Any] | None
    ) -> Iterator[CalendarPage]:
        reader = self._factory(replace(self._source, address=address), self._endpoints, self._http)
        return iter(reader.read(cursor, window))

    def first_pages(self, calendars: Sequence[tuple[str, str | None]], window: Window) -> list[dict[str, Any] | None]:
        return [None] * len(calendars)

    def close(self) -> None:
        pass


DirectoryReaderFactory = Callable[[dict[str, Any], dict[str, Any], Endpoints], DirectoryReader]
SubscriberFactory = Callable[[dict[str, Any], dict[str, Any], Endpoints], PushSubscriber]

CalendarReaderFactory = Callable[[CalendarSource, Endpoints, httpx.Client], CalendarReader]
CalendarWriterFactory = Callable[[CalendarSource, Endpoints, httpx.Client], CalendarWriter]
CalendarSubscriberFactory = Callable[[CalendarSource, Endpoints], PushSubscriber]
CalendarBatchFactory = Callable[[CalendarSource, Endpoints, httpx.Client], CalendarBatch]
PeopleReaderFactory = Callable[[dict[str, Any], dict[str, Any], Endpoints, Callable[[Any], None]], PeopleReader]
PersonReaderFactory = Callable[[dict[str, Any], dict[str, Any], Endpoints], PersonReader]


def names_groups(settings: dict[str, Any]) -> bool:
    """Whether a connection's (clean) settings name groups, in its scope or as teams: reading one person
    then reads their groups too."""
    return bool((settings.get("scope") or {}).get("groups") or settings.get("team_groups"))


# Settings and credentials ---------------------------------------------------------------------
#
# Validators raise ValueError with the end of the sentence ("must be true or false"); `Kind.clean_settings`
# puts the setting's name in front, so every kind's messages read alike.


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError("must be true or false")
    return value


def non_empty(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError("must be a non-empty string")
    return value.strip()


MAX_ADDRESS = 2000  # characters of an address typed in (a feed's, a CalDAV server's)


def web_address(value: Any, *, webcal: bool = False, userinfo: bool = True) -> str:
    """`value` stripped, if it is an http or https address with a host of at most MAX_ADDRESS characters (with
    `webcal`, also webcal:// and webcals://, which calendar apps read as https; without `userinfo`, carrying
    no user or password). The ValueError says what it must be, never what it was: addresses carry secrets.
    Where it leads is the outbound guard's to check, when it is used (connectors/outbound.py)."""
    text = non_empty(value)
    schemes = ("http", "https", "webcal", "webcals") if webcal else ("http", "https")
    wrong = ValueError(
        f"must be an {'http, https or webcal' if webcal else 'http or https'} address with a host, "
        f"of at most {MAX_ADDRESS} characters"
    )
    if len(text) > MAX_ADDRESS:
        raise wrong
    try:
        parts = urlsplit(text)
        host = parts.hostname
    except ValueError:
        raise wrong from None
    if parts.scheme.lower() not in schemes or not host:
        raise wrong
    if not userinfo and (parts.username is not None or parts.password is not None):
        raise ValueError("must not carry a user or password (give them as username and password)")
    return text


def _texts(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(item, str) and item.strip() for item in value):
        raise ValueError("must be a list of non-empty strings")
    return [item.strip() for item in value]


# Given, a setting must be valid (null included); left out, it is absent from what is stored.
# (The schemas say what is taken: null is refused where a setting is given.)
_TEXT = {"type": "string", "minLength": 1}
Flag = Annotated[bool | None, BeforeValidator(_flag), WithJsonSchema({"type": "boolean"})]
Text = Annotated[str, BeforeValidator(non_empty), WithJsonSchema(_TEXT)]
OptionalText = Annotated[str | None, BeforeValidator(non_empty), WithJsonSchema(_TEXT)]
Texts = Annotated[list[str] | None, BeforeValidator(_texts), WithJsonSchema({"type": "array", "items": _TEXT})]


class ScopeSettings(BaseModel):
    """Who of a directory belongs in the organisation (nothing given: every enabled user with a mailbox)."""

    model_config = ConfigDict(extra="forbid")

    groups: Texts = Field(default=None, description="Group ids (Graph) or addresses (Google).")
    org_units: Texts = Field(default=None, description="Google orgUnitPath prefixes.")
    domains: Texts = Field(default=None, description="Email domains.")
    include_guests: Flag = Field(default=None, description="true: guest (B2B) accounts too.")
    include_without_mailbox: Flag = Field(default=None, description="true: accounts without a mailbox too.")


def _scope(value: Any) -> Any:
    if not value:
        return {}
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    return value


def _people(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000:
        raise ValueError("must be a whole number of people from 0 to 1000000")
    return value


def _percent(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 100:
        raise ValueError("must be a percentage from 0 to 100")
    return float(value)


class RemovalLimit(BaseModel):
    """How many people a connection's syncs may remove within an hour: the larger of `people` and `percent`
    of the people it has in scope. Removals past it wait for an admin (held); the rest of a sync goes on."""

    model_config = ConfigDict(extra="forbid")

    people: Annotated[int, BeforeValidator(_people), WithJsonSchema({"type": "integer", "minimum": 0})] = Field(
        default=10, description="People (default 10)."
    )
    percent: Annotated[
        float, BeforeValidator(_percent), WithJsonSchema({"type": "number", "minimum": 0, "maximum": 100})
    ] = Field(default=5.0, description="Percent of the connection's people in scope (default 5).")


def _object(value: Any) -> Any:
    if not isinstance(value, dict):
        raise ValueError("must be an object")
    return value


class KindSettings(BaseModel):
    """The settings every kind takes: the scope, the groups mirrored as teams, the removal limit."""

    model_config = ConfigDict(extra="forbid")

    scope: Annotated[ScopeSettings, BeforeValidator(_scope)] = Field(default_factory=ScopeSettings)
    team_groups: Texts = Field(default=None, description='Group ids or addresses mirrored as teams, "*" for all.')
    removal_limit: Annotated[RemovalLimit | None, BeforeValidator(_object)] = Field(
        default=None,
        description="{people, percent}: removals within an hour past the larger of the two wait for an admin "
        "(default 10 people or 5%).",
    )


class KindCredentials(BaseModel):
    """The secrets a kind takes (kept encrypted, never shown again); other keys are kept as given."""

    model_config = ConfigDict(extra="allow")


@dataclass(frozen=True)
class Cli:
    """How `deskbridge connect <kind>` takes a setting or credential where the rule does not fit.

    The rule: a setting is its option (`tenant_id`: `--tenant-id`; a list: the option repeated, in the
    singular; true or false: a flag), and a credential is a secret read from the environment variable its
    `-env` option names (`--client-secret-env VAR`), never taken on the command line. The help is the
    field's description. Put one in the field's `Annotated[...]`.
    """

    option: str | None = None  # the option's name without `--` (and without `-env`), when not the field's
    env: str | None = None  # a secret's variable when its `-env` option is left out
    plain: bool = False  # a credential that is no secret, given as it is (`--username`)
    either: bool = False  # a secret that may also be given as it is (many feeds carry none): both options
    file: str | None = None  # read from the file the option names; what it holds, as the metavar (PEM)
    parse: Callable[[str], Any] | None = None  # a value (or a file's text) to what the model takes; ValueError
    required: bool = False  # asked for by the command line although the model may go without
    default: str | None = None  # a setting's value when its option is left out


def cli_of(field: FieldInfo) -> Cli:
    """The field's command-line hint (the rule's when it has none)."""
    return next((item for item in field.metadata if isinstance(item, Cli)), Cli())


class KindInvalid(ValueError):
    """Settings or credentials a kind does not take; `field` names where (``settings.region``)."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


@dataclass(frozen=True)
class Kind:
    """One kind of connection: everything deskbridge knows about it, in one place."""

    name: str  # the `kind` value stored and sent on the API
    title: str  # what people call it ("Microsoft Entra ID")
    settings: type[KindSettings]
    credentials: type[KindCredentials]
    # The credentials needed: any one of these sets, every key given (an empty set: none needed).
    credential_sets: tuple[frozenset[str], ...]
    capabilities: frozenset[Capability]
    calendars_opt_in: bool = False  # its calendars are read only with `settings.calendars` true
    # Settings a new connection has unless given (CSV mirrors every team of its file).
    default_settings: Mapping[str, Any] = field(default_factory=dict)
    # The credential shown on the connection, as its scheme and host only (an ICS feed's URL, as `feed_url`).
    shown_address: str | None = None
    # What a new connection is called unless named, from its settings as given; left out: the title.
    default_name: Callable[[dict[str, Any]], str] | None = None
    directory_reader: DirectoryReaderFactory | None = None
    subscriber: SubscriberFactory | None = None  # push channels on the directory
    calendar_reader: CalendarReaderFactory | None = None
    calendar_writer: CalendarWriterFactory | None = None
    calendar_subscriber: CalendarSubscriberFactory | None = None
    # Many of a connection's calendars read in one job, sharing a sign-in; left out: `OneByOne`.
    calendar_batch: CalendarBatchFactory | None = None
    people_reader: PeopleReaderFactory | None = None
    person_reader: PersonReaderFactory | None = None  # with Capability.READS_PERSON

    def can(self, capability: Capability) -> bool:
        return capability in self.capabilities

    def name_for(self, settings: dict[str, Any]) -> str:
        """What a new connection with these settings is called unless named."""
        return self.title if self.default_name is None else self.default_name(settings)

    def batch(self, source: CalendarSource, endpoints: Endpoints, http: httpx.Client) -> CalendarBatch:
        """The readers of a connection's calendars for one job (`source` without an address)."""
        if self.calendar_batch is not None:
            return self.calendar_batch(source, endpoints, http)
        if self.calendar_reader is None:
            raise ConnectorError(f"{self.name} connections have no calendars")
        return OneByOne(self.calendar_reader, source, endpoints, http)

    def reads_calendars(self, settings: dict[str, Any]) -> bool:
        """Whether a connection of this kind with these settings has its calendars read."""
        return self.can(Capability.READS_CALENDARS) and (not self.calendars_opt_in or bool(settings.get("calendars")))

    def clean_settings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """A clean copy of `settings` as stored (the kind's options given, the scope and teams always),
        or KindInvalid naming the first thing wrong: an unknown setting, then a missing one, then a value."""
        missing = sorted(
            name for name, field in self.settings.model_fields.items() if field.is_required() and not settings.get(name)
        )
        try:
            model = self.settings.model_validate(settings)
        except ValidationError as error:
            raise self._invalid(error, missing) from None
        if missing:
            raise KindInvalid(f"a {self.name} connection needs {missing[0]!r}", field="settings")
        clean = model.model_dump(exclude_unset=True, exclude_none=True)
        clean["scope"] = model.scope.model_dump(exclude_none=True)
        clean["team_groups"] = model.team_groups or []
        return clean

    def _invalid(self, error: ValidationError, missing: list[str]) -> KindInvalid:
        problems = error.errors()
        for problem in problems:
            if problem["type"] == "extra_forbidden":
                name = str(problem["loc"][-1])
                if len(problem["loc"]) > 1:
                    part = str(problem["loc"][0])
                    what = "scope option" if part == "scope" else f"{part} option"
                    return KindInvalid(f"unknown {what} {name!r}", field=f"settings.{part}")
                return KindInvalid(f"unknown setting {name!r} for a {self.name} connection", field="settings")
        if missing:
            return KindInvalid(f"a {self.name} connection needs {missing[0]!r}", field="settings")
        problem = problems[0]
        path = ".".join(str(part) for part in problem["loc"])
        cause = problem.get("ctx", {}).get("error")
        ending = str(cause) if isinstance(cause, ValueError) else problem["msg"]
        return KindInvalid(f"{path}{'' if ending.startswith(':') else ' '}{ending}", field=f"settings.{path}")

    def json_schema(self) -> dict[str, Any]:
        """The kind's request shape as a JSON Schema: `kind`, its settings and its credentials, inlined."""
        return {
            "type": "object",
            "title": f"{self.title} ({self.name})",
            "properties": {
                "kind": {"const": self.name},
                "settings": _inlined(self.settings.model_json_schema()),
                "credentials": _inlined(self.credentials.model_json_schema()),
            },
            "required": ["kind"],
        }

    def check_credentials(self, credentials: dict[str, Any]) -> None:
        """KindInvalid unless one of the kind's credential sets is given whole and each one given is valid;
        the message never repeats a value (they are secrets)."""
        if not any(all(credentials.get(key) for key in needed) for needed in self.credential_sets):
            options = " or ".join(" + ".join(sorted(needed)) for needed in self.credential_sets)
            raise KindInvalid(f"a {self.name} connection needs credentials: {options}", field="credentials")
        try:
            self.credentials.model_validate(credentials)
        except ValidationError as error:
            problem = error.errors()[0]
            path = ".".join(str(part) for part in problem["loc"])
            cause = problem.get("ctx", {}).get("error")
            ending = str(cause) if isinstance(cause, ValueError) else "is not valid"
            raise KindInvalid(f"credentials.{path} {ending}", field=f"credentials.{path}") from None


def _inlined(schema: dict[str, Any]) -> dict[str, Any]:
    """`schema` with its `$defs` put in place of their references, so it can sit inside another document."""
    definitions = schema.pop("$defs", {})

    def walk(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return walk(dict(definitions[ref.rsplit("/", 1)[-1]]))
            return {key: walk(value) for key, value in node.items()}
        if isinstance(node, list):
            return [walk(value) for value in node]
        return node

    inlined: dict[str, Any] = walk(schema)
    return inlined
