"""Real exports from outside (../shared/reference/data/csv/*.csv, when present): each one is read, or
refused with errors that name their lines; never an exception, never a person without an identity.
And the providers' own documented users (../shared/reference/data/graph and google) written into
their Download users columns: every column read as the provider means it."""

from __future__ import annotations

import csv
import io
import json

import pytest

from connectors.csv import parse_bytes
from connectors.csv.parse import EMAIL
from tests.conftest import SHARED_DATA, shared_data
from tests.connectors.csv.test_exports import ENTRA_HEADER, GOOGLE_HEADER

FILES = sorted(path.name for path in (SHARED_DATA / "csv").glob("*.csv")) or ["(reference data absent)"]


@pytest.mark.parametrize("name", FILES)
def test_every_real_export_reads_or_is_refused_line_by_line(name: str) -> None:
    parsed = parse_bytes(shared_data("csv", name).read_bytes())

    if parsed.page is None:
        assert parsed.errors
        assert all(error.line >= 1 and error.message for error in parsed.errors)
        return
    assert parsed.page.full_users
    assert parsed.page.users
    for user in parsed.page.users:
        assert user.external_id
        assert user.username
        assert user.email is None or EMAIL.fullmatch(user.email), user.email
    assert len({user.external_id for user in parsed.page.users}) == len(parsed.page.users)


def _rows(header: str, rows: list[list[str]]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(header.split(","))
    writer.writerows(rows)
    return ("\ufeff" + out.getvalue()).encode()


def test_graphs_documented_users_as_an_entra_download() -> None:
    """The users of Microsoft's own Graph examples, written into the Download users columns."""
    users = [
        user
        for name in ("user_list_response.json", "user_list_filter_count_response.json")
        for user in json.loads(shared_data("graph", name).read_text())["value"]
    ]
    rows = []
    for user in users:
        values = {column: user.get(column) or "" for column in ENTRA_HEADER.split(",")}
        values["objectId"] = user.get("id") or ""
        rows.append([str(values[column]) for column in ENTRA_HEADER.split(",")])

    parsed = parse_bytes(_rows(ENTRA_HEADER, rows))

    assert parsed.page is not None, parsed.errors
    read = {user.username: user for user in parsed.page.users}
    for user in users:
        mine = read[user["userPrincipalName"].lower()]
        assert mine.email == (user["mail"].lower() if user.get("mail") else None)  # no mailbox: no address
        assert mine.display_name == user["displayName"]
        assert mine.active


def test_googles_documented_users_as_an_admin_console_download() -> None:
    """The users of the Admin SDK example, written into the Download users columns (suspended and archived
    accounts say Suspended: they cannot sign in)."""
    users = json.loads(shared_data("google", "directory_users_list_response_constructed.json").read_text())["users"]
    columns = GOOGLE_HEADER.split(",")
    rows = []
    for user in users:
        values = dict.fromkeys(columns, "")
        values["First Name [Required]"] = user["name"]["givenName"]
        values["Last Name [Required]"] = user["name"]["familyName"]
        values["Email Address [Required]"] = user["primaryEmail"]
        values["Org Unit Path [Required]"] = user["orgUnitPath"]
        values["Status [READ ONLY]"] = "Suspended" if user["suspended"] or user["archived"] else "Active"
        rows.append([values[column] for column in columns])

    parsed = parse_bytes(_rows(GOOGLE_HEADER, rows))

    assert parsed.page is not None, parsed.errors
    read = {user.email: user for user in parsed.page.users}
    for user in users:
        mine = read[user["primaryEmail"].lower()]
        assert mine.display_name == user["name"]["fullName"]
        assert mine.active is not (user["suspended"] or user["archived"])
        assert mine.org_unit == user["orgUnitPath"]
