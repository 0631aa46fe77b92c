"""connectors.csv: every rule of the people export, good files and bad ones."""

from __future__ import annotations

import pytest

from connectors.csv import RowError, parse, parse_bytes
from connectors.records import DirectoryGroup, DirectoryPage, DirectoryUser


def page_of(text: str) -> DirectoryPage:
    parsed = parse(text)
    assert parsed.errors == (), parsed.errors
    assert parsed.page is not None
    return parsed.page


def errors_of(text: str) -> list[str]:
    parsed = parse(text)
    assert parsed.page is None, "a file with errors gives no page"
    return [str(error) for error in parsed.errors]


def test_a_file_is_one_complete_page_keyed_by_address() -> None:
    page = page_of("email,name,teams,active\nAda@Acme.example,Ada  Lovelace,Ops;Design,true\nbob@acme.example,Bob,,\n")

    assert (page.full_users, page.full_groups, page.last) == (True, True, True)
    assert page.users == (
        DirectoryUser("ada@acme.example", "ada@acme.example", "ada@acme.example", "Ada Lovelace", active=True),
        DirectoryUser("bob@acme.example", "bob@acme.example", "bob@acme.example", "Bob", active=True),
    )
    assert set(page.groups) == {
        DirectoryGroup("ops", "Ops", members=frozenset({"ada@acme.example"})),
        DirectoryGroup("design", "Design", members=frozenset({"ada@acme.example"})),
    }


def test_teams_split_on_semicolons_or_bars_and_are_named_as_first_written() -> None:
    page = page_of("email,teams\na@x.example,Ops | Sales\nb@x.example,ops;;  sales team \nc@x.example,OPS;Ops\n")
    groups = {group.external_id: group for group in page.groups}
    assert set(groups) == {"ops", "sales", "sales team"}
    assert groups["ops"].name == "Ops"
    assert groups["ops"].members == frozenset({"a@x.example", "b@x.example", "c@x.example"})
    assert groups["sales team"].name == "sales team"


@pytest.mark.parametrize(
    ("value", "active"),
    [
        ("true", True),
        ("TRUE", True),
        ("yes", True),
        ("1", True),
        ("", True),
        ("false", False),
        ("No", False),
        ("0", False),
    ],
)
def test_active_values(value: str, active: bool) -> None:
    assert page_of(f"email,active\na@x.example,{value}\n").users[0].active is active


def test_bom_crlf_column_order_extra_columns_and_header_case() -> None:
    text = "\ufeffTeams ,Employee ID, ACTIVE,E-Mail,EMAIL ,Name\r\nOps,17,no,ignored,Ada@X.example,Ada\r\n"
    page = page_of(text)
    assert page.users == (DirectoryUser("ada@x.example", "ada@x.example", "ada@x.example", "Ada", active=False),)
    assert page.groups == (DirectoryGroup("ops", "Ops", members=frozenset({"ada@x.example"})),)


def test_bytes_with_a_bom_and_quoted_cells() -> None:
    data = '\ufeffemail,name\r\na@x.example,"Smith, Ann"\r\n'.encode()
    parsed = parse_bytes(data)
    assert parsed.page is not None
    assert parsed.page.users[0].display_name == "Smith, Ann"


def test_only_the_email_column_is_needed_and_blank_lines_are_skipped() -> None:
    page = page_of("email\n\na@x.example\n,\n\nb@x.example\n")
    assert [user.external_id for user in page.users] == ["a@x.example", "b@x.example"]
    assert page.groups == ()
    assert parse("email\n\na@x.example\n,\n\nb@x.example\n").rows == 2


def test_every_bad_row_is_reported_by_the_line_it_starts_on() -> None:
    text = (
        "email,name,active\n"  # 1
        "ada@x.example,Ada,true\n"  # 2
        "not-an-address,Bob,true\n"  # 3
        '"carol@x.example","Carol\nSecond line",maybe\n'  # 4-5: the row starts on 4
        ",Dan,true\n"  # 6
        "ADA@x.example,Ada again,false\n"  # 7
        "eve@x.example,Eve,\n"  # 8
    )
    assert errors_of(text) == [
        "line 3: 'not-an-address' is not an email address",
        "line 4: active must be true/false, yes/no, 1/0 or Active/Suspended, not 'maybe'",
        "line 6: the email is missing",
        "line 7: ada@x.example is already on line 2",
    ]


def test_a_row_with_two_problems_says_both() -> None:
    assert errors_of("email,active\nbad@,perhaps\n") == [
        "line 2: 'bad@' is not an email address; active must be true/false, yes/no, 1/0 or Active/Suspended, "
        "not 'perhaps'"
    ]


@pytest.mark.parametrize("address", ["a b@x.example", "a@x", "a@@x.example", "a@x.example;b@x.example", "@x.example"])
def test_bad_addresses(address: str) -> None:
    assert errors_of(f'email\n"{address}"\n') == [f"line 2: {address!r} is not an email address"]


def test_a_header_without_email_says_what_was_found_and_what_is_expected() -> None:
    (error,) = errors_of("name,teams\nAda,Ops\n")
    assert error.startswith("line 1: the header has no email column: found 'name', 'teams'; expected email")
    assert "userPrincipalName" in error
    assert "Email Address [Required]" in error
    assert "sep=" in error


def test_a_column_named_twice_is_refused() -> None:
    assert errors_of("email,Email\na@x.example,b@x.example\n") == ["line 1: the column 'Email' appears twice"]


def test_an_empty_file_and_a_file_without_people_are_refused() -> None:
    assert errors_of("") == ["line 1: the file is empty; it needs a header line with an email column"]
    assert errors_of("\ufeff\r\n") == ["line 1: the file is empty; it needs a header line with an email column"]
    # An import removes whoever is left out: an empty listing would remove everyone.
    assert errors_of("email,name\n") == ["line 2: the file lists nobody; an import never empties a directory"]


def test_bytes_that_are_not_utf8() -> None:
    parsed = parse_bytes("email,name\na@x.example,Zoë\n".encode("latin-1"))
    assert parsed.page is None
    assert parsed.errors == (RowError(2, "the file is not UTF-8 text; save it as CSV UTF-8"),)


def test_control_characters_are_not_addresses() -> None:
    assert errors_of('email\n"a@x.example\x00"\n') == ["line 2: 'a@x.example\\x00' is not an email address"]


def test_a_stray_quote_is_an_error_not_a_cell_that_swallows_the_rest() -> None:
    assert errors_of('email,name\na@x.example,"Ann\nb@x.example,Bob\n') == [
        "line 2: the file cannot be read as CSV from here on (unexpected end of data); check the quotes"
    ]
    assert errors_of('email,name\na@x.example,"Ann"x\n') == [
        "line 2: the file cannot be read as CSV from here on (',' expected after '\"'); check the quotes"
    ]
