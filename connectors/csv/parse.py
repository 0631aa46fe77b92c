"""Read a people export into one complete directory page: our own `email,name,teams,active`, or
Microsoft Entra ID's and Google Admin console's "Download users" files as downloaded (`columns.py`),
in whatever dialect a spreadsheet saved them (`dialect.py`).

The file is the whole directory: whoever it leaves out is gone, so a file with any bad row is
refused as a whole (applying the good rows would remove the people on the bad ones). Every bad
row is reported, by the line it starts on, so one round of fixes is enough. An account without a
mailbox (Entra's `mail` empty, a sign-in name only) is not a bad row: it is listed without an
address, and the connection's scope decides (skipped, with a note, unless it takes such accounts).
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from connectors.csv.columns import Header, HeaderError, read_header
from connectors.csv.dialect import NotText, decode, sniff
from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser

TRUE = frozenset({"true", "yes", "1", "active", "enabled"})
FALSE = frozenset({"false", "no", "0", "suspended", "disabled", "inactive", "archived", "blocked"})
ACTIVE_VALUES = "true/false, yes/no, 1/0 or Active/Suspended"
# Deliberately loose (the store normalises addresses again): one @, no spaces or list separators.
_PART = r'[^@\s,;<>"\x00-\x1f\x7f]+'  # no spaces, control characters or list separators
EMAIL = re.compile(rf"{_PART}@{_PART}\.{_PART}")
TEAM_SEPARATORS = re.compile(r"[;|]")
_TEMPLATE_VERSION = re.compile(r"version:v\d", re.IGNORECASE)  # the first line of Entra's bulk templates


@dataclass(frozen=True, slots=True)
class RowError:
    """What is wrong with one line of the file (line 1 is the header)."""

    line: int
    message: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.message}"


@dataclass(frozen=True, slots=True)
class ParsedFile:
    """A file read: the page to apply, or (`page` None) every row error found."""

    page: DirectoryPage | None
    errors: tuple[RowError, ...]
    rows: int  # people rows read (blank lines left out)


def parse_bytes(data: bytes) -> ParsedFile:
    """Parse a file as saved by a spreadsheet or downloaded: UTF-8 (with or without a byte-order mark)
    or UTF-16 with its mark (Excel's "Unicode Text")."""
    try:
        text = decode(data)
    except NotText as error:
        return ParsedFile(None, (RowError(error.line, str(error)),), 0)
    return parse(text)


def parse(text: str) -> ParsedFile:
    """Parse CSV text into a full page (users and groups) keyed by lower-cased address (or sign-in name)."""
    body, dialect = sniff(text)
    # strict: a stray quote is an error, not a cell that silently swallows the rows after it.
    reader = csv.reader(io.StringIO(body, newline=""), delimiter=dialect.delimiter, strict=True)
    errors: list[RowError] = []
    header: Header | None = None
    users: dict[str, DirectoryUser] = {}
    first_line: dict[str, int] = {}
    teams: dict[str, tuple[str, set[str]]] = {}  # key -> (name as first written, member ids)
    rows = 0
    line = 1 + dialect.skipped_lines
    try:
        for cells in reader:
            # A quoted cell may span lines: report where the row starts.
            start, line = line, reader.line_num + 1 + dialect.skipped_lines
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                if len(cells) == 1 and _TEMPLATE_VERSION.match(cells[0].strip()):
                    continue
                try:
                    header = read_header(cells, start)
                except HeaderError as error:
                    errors.append(RowError(start, str(error)))
                    break
                continue
            rows += 1
            user, row_teams = _row(cells, header, start, errors)
            if user is None:
                continue
            if user.external_id in first_line:
                errors.append(RowError(start, f"{user.external_id} is already on line {first_line[user.external_id]}"))
                continue
            first_line[user.external_id] = start
            users[user.external_id] = user
            for team in row_teams:
                teams.setdefault(team.lower(), (team, set()))[1].add(user.external_id)
    except csv.Error as error:
        errors.append(RowError(line, f"the file cannot be read as CSV from here on ({error}); check the quotes"))
    if header is None and not errors:
        errors.append(RowError(1, "the file is empty; it needs a header line with an email column"))
    elif not errors and not any(user.email for user in users.values()):
        # An import removes whoever the file leaves out: a listing without addresses would remove everyone.
        who = "nobody" if not rows else "nobody with an email address"
        errors.append(RowError(line, f"the file lists {who}; an import never empties a directory"))
    if errors:
        return ParsedFile(None, tuple(errors), rows)
    groups = tuple(
        DirectoryGroup(external_id=key, name=name, members=frozenset(ids)) for key, (name, ids) in teams.items()
    )
    page = DirectoryPage(users=tuple(users.values()), groups=groups, full_users=True, full_groups=True, last=True)
    return ParsedFile(page, (), rows)


def _row(cells: list[str], header: Header, line: int, errors: list[RowError]) -> tuple[DirectoryUser | None, list[str]]:
    def cell(name: str) -> str:
        index = header.columns.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    email, username = cell("email").lower(), cell("username").lower()
    said = "active" if header.has("active") else "blocked"  # a file says one or the other
    active_text = cell(said).lower()
    problems = []
    if not email and not username:
        problems.append("the email is missing")
    elif email and not EMAIL.fullmatch(email):
        problems.append(f"{cell('email')!r} is not an email address")
    if active_text and active_text not in TRUE | FALSE:
        problems.append(f"{header.labels[said]} must be {ACTIVE_VALUES}, not {cell(said)!r}")
    blocked = said == "blocked" and active_text in TRUE
    if problems:
        errors.append(RowError(line, "; ".join(problems)))
        return None, []
    name = cell("name") or " ".join(part for part in (cell("given_name"), cell("family_name")) if part)
    user = DirectoryUser(
        external_id=email or username,  # the address, as files without a sign-in column were keyed
        username=username or email,
        email=email or None,  # none: an account without a mailbox (the scope decides)
        display_name=" ".join(name.split()),
        active=not blocked if said == "blocked" else active_text not in FALSE,
        guest=cell("user_type").lower() == "guest",
        org_unit=cell("org_unit") or None,
    )
    row_teams: dict[str, str] = {}
    for part in TEAM_SEPARATORS.split(cell("teams")):
        team = " ".join(part.split())
        if team:
            row_teams.setdefault(team.lower(), team)
    return user, list(row_teams.values())
