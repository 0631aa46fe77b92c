"""Read a people export (`email,name,teams,active`) into one complete directory page.

The file is the whole directory: whoever it leaves out is gone, so a file with any bad row is
refused as a whole (applying the good rows would remove the people on the bad ones). Every bad
row is reported, by the line it starts on, so one round of fixes is enough.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser

COLUMNS = ("email", "name", "teams", "active")
TRUE = frozenset({"true", "yes", "1"})
FALSE = frozenset({"false", "no", "0"})
# Deliberately loose (the store normalises addresses again): one @, no spaces or list separators.
_PART = r'[^@\s,;<>"\x00-\x1f\x7f]+'  # no spaces, control characters or list separators
EMAIL = re.compile(rf"{_PART}@{_PART}\.{_PART}")
TEAM_SEPARATORS = re.compile(r"[;|]")


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
    """Parse a file as saved by a spreadsheet: UTF-8, with or without a byte-order mark."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        return ParsedFile(None, (RowError(line, "the file is not UTF-8 text; save it as CSV UTF-8"),), 0)
    return parse(text)


def parse(text: str) -> ParsedFile:
    """Parse CSV text into a full page (users and groups) keyed by lower-cased address."""
    # strict: a stray quote is an error, not a cell that silently swallows the rows after it.
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff"), newline=""), strict=True)
    errors: list[RowError] = []
    header: dict[str, int] | None = None
    users: dict[str, DirectoryUser] = {}
    first_line: dict[str, int] = {}
    teams: dict[str, tuple[str, set[str]]] = {}  # key -> (name as first written, member ids)
    rows = 0
    line = 1
    try:
        for cells in reader:
            start, line = line, reader.line_num + 1  # a quoted cell may span lines: report where the row starts
            if not any(cell.strip() for cell in cells):
                continue
            if header is None:
                header = _header(cells, start, errors)
                if header is None:
                    break
                continue
            rows += 1
            user, row_teams = _row(cells, header, start, errors)
            if user is None:
                continue
            if user.external_id in first_line:
                errors.append(RowError(start, f"{user.email} is already on line {first_line[user.external_id]}"))
                continue
            first_line[user.external_id] = start
            users[user.external_id] = user
            for team in row_teams:
                teams.setdefault(team.lower(), (team, set()))[1].add(user.external_id)
    except csv.Error as error:
        errors.append(RowError(line, f"the file cannot be read as CSV from here on ({error}); check the quotes"))
    if header is None and not errors:
        errors.append(RowError(1, "the file is empty; it needs a header line with an email column"))
    elif not rows and not errors:
        # An import removes whoever the file leaves out: an empty listing would remove everyone.
        errors.append(RowError(line, "the file lists nobody; an import never empties a directory"))
    if errors:
        return ParsedFile(None, tuple(errors), rows)
    groups = tuple(
        DirectoryGroup(external_id=key, name=name, members=frozenset(ids)) for key, (name, ids) in teams.items()
    )
    page = DirectoryPage(users=tuple(users.values()), groups=groups, full_users=True, full_groups=True, last=True)
    return ParsedFile(page, (), rows)


def _header(cells: list[str], line: int, errors: list[RowError]) -> dict[str, int] | None:
    """Where each known column is (extra columns are ignored, case and spaces do not matter)."""
    found: dict[str, int] = {}
    for index, cell in enumerate(cells):
        name = cell.strip().lower()
        if name not in COLUMNS:
            continue
        if name in found:
            errors.append(RowError(line, f"the column {name!r} appears twice"))
            return None
        found[name] = index
    if "email" not in found:
        errors.append(RowError(line, f"the header has no email column (expected {', '.join(COLUMNS)})"))
        return None
    return found


def _row(
    cells: list[str], header: dict[str, int], line: int, errors: list[RowError]
) -> tuple[DirectoryUser | None, list[str]]:
    def cell(name: str) -> str:
        index = header.get(name)
        return cells[index].strip() if index is not None and index < len(cells) else ""

    email = cell("email").lower()
    active_text = cell("active").lower()
    problems = []
    if not email:
        problems.append("the email is missing")
    elif not EMAIL.fullmatch(email):
        problems.append(f"{cell('email')!r} is not an email address")
    if active_text and active_text not in TRUE | FALSE:
        problems.append(f"active must be true/false, yes/no or 1/0, not {cell('active')!r}")
    if problems:
        errors.append(RowError(line, "; ".join(problems)))
        return None, []
    user = DirectoryUser(
        external_id=email,
        username=email,
        email=email,
        display_name=" ".join(cell("name").split()),
        active=active_text not in FALSE,
    )
    row_teams: dict[str, str] = {}
    for part in TEAM_SEPARATORS.split(cell("teams")):
        team = " ".join(part.split())
        if team:
            row_teams.setdefault(team.lower(), team)
    return user, list(row_teams.values())
