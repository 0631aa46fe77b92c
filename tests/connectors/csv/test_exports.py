"""connectors.csv: identity providers' exports as downloaded, and files as spreadsheets save them.

The header rows are built from the providers' documentation:
- Microsoft Entra ID, "Download a list of users" (learn.microsoft.com, entra-docs users-bulk-download.md):
  the attributes listed there, in that order; accountEnabled is True/False, userType Member/Guest,
  and `mail` is empty for an account without a mailbox.
- Google Admin console, "Download a list of users" / "Add or update multiple users from a CSV file"
  (support.google.com/a/answer/7348070 and 40057): the columns of the user CSV, with their
  `[Required]`, `[UPLOAD ONLY]` and `[READ ONLY]` notes; Status is Active or Suspended.
"""

from __future__ import annotations

import pytest

from connectors.csv import parse, parse_bytes
from connectors.records import DirectoryPage, DirectoryUser

ENTRA_HEADER = (
    "userPrincipalName,displayName,surname,mail,givenName,objectId,userType,jobTitle,department,accountEnabled,"
    "usageLocation,streetAddress,state,country,physicalDeliveryOfficeName,city,postalCode,telephoneNumber,mobile,"
    "authenticationAlternativePhoneNumber,authenticationEmail,alternateEmailAddress,ageGroup,consentProvidedForMinor,"
    "legalAgeGroupClassification"
)
GOOGLE_HEADER = (
    "First Name [Required],Last Name [Required],Email Address [Required],Password [Required],"
    "Password Hash Function [UPLOAD ONLY],Org Unit Path [Required],New Primary Email [UPLOAD ONLY],"
    "Status [READ ONLY],Last Sign In [READ ONLY],Recovery Email,Home Secondary Email,Work Secondary Email,"
    "Recovery Phone [MUST BE IN THE E.164 FORMAT],Work Phone,Home Phone,Mobile Phone,Work Address,Home Address,"
    "Employee ID,Employee Type,Employee Title,Manager Email,Department,Cost Center,2sv Enrolled [READ ONLY],"
    "2sv Enforced [READ ONLY],Building ID,Floor Name,Floor Section,Email Usage [READ ONLY],"
    "Drive Usage [READ ONLY],Total Storage [READ ONLY],Change Password at Next Sign-In,New Status [UPLOAD ONLY]"
)


def entra_row(upn: str, name: str, mail: str, *, user_type: str = "Member", enabled: str = "True") -> str:
    given, _, surname = name.partition(" ")
    cells = [upn, name, surname, mail, given, "4a3c7b1e-0000-4000-8000-00000000000" + str(len(upn) % 10)]
    cells += [user_type, "Engineer", "R&D", enabled, "DE", "Hauptstr. 1", "BE", "Germany", "Berlin HQ", "Berlin"]
    cells += ["10115", "+49 30 1234567", "", "", "", "", "", "", ""]
    return ",".join(cells)


def google_row(first: str, last: str, email: str, status: str, org_unit: str = "/") -> str:
    cells = [first, last, email, "****", "", org_unit, "", status, "2026/11/30 09:12:44", "", "", "", "", "", ""]
    cells += ["", "", "", "", "", "", "", "", "", "True", "False", "", "", "", "0.12GB", "1.4GB", "1.52GB", "False", ""]
    return ",".join(cells)


def page_of(text: str) -> DirectoryPage:
    parsed = parse(text)
    assert parsed.errors == (), parsed.errors
    assert parsed.page is not None
    return parsed.page


def test_the_entra_download_is_read_as_downloaded() -> None:
    text = "\ufeff" + "\r\n".join(
        [
            ENTRA_HEADER,
            entra_row("ada@contoso.example", "Ada Lovelace", "Ada.Lovelace@contoso.example"),
            entra_row("svc-scanner@contoso.onmicrosoft.example", "Scanner", ""),  # no mailbox
            entra_row(
                "bob_fabrikam.example#EXT#@contoso.onmicrosoft.example",
                "Bob Guest",
                "bob@fabrikam.example",
                user_type="Guest",
            ),
            entra_row("carol@contoso.example", "Carol Left", "carol@contoso.example", enabled="False"),
        ]
    )

    page = page_of(text)

    assert page.users == (
        DirectoryUser(
            "ada.lovelace@contoso.example", "ada@contoso.example", "ada.lovelace@contoso.example", "Ada Lovelace"
        ),
        DirectoryUser(
            "svc-scanner@contoso.onmicrosoft.example", "svc-scanner@contoso.onmicrosoft.example", None, "Scanner"
        ),
        DirectoryUser(
            "bob@fabrikam.example",
            "bob_fabrikam.example#ext#@contoso.onmicrosoft.example",
            "bob@fabrikam.example",
            "Bob Guest",
            guest=True,
        ),
        DirectoryUser(
            "carol@contoso.example", "carol@contoso.example", "carol@contoso.example", "Carol Left", active=False
        ),
    )
    assert page.groups == ()


def test_the_google_admin_download_is_read_as_downloaded() -> None:
    text = "\n".join(
        [
            GOOGLE_HEADER,
            google_row("Ada", "Lovelace", "ada@example.org", "Active", "/Engineering"),
            google_row("Bob", "Stone", "bob@example.org", "Suspended"),
        ]
    )

    page = page_of(text)

    assert page.users == (
        DirectoryUser("ada@example.org", "ada@example.org", "ada@example.org", "Ada Lovelace", org_unit="/Engineering"),
        DirectoryUser("bob@example.org", "bob@example.org", "bob@example.org", "Bob Stone", active=False, org_unit="/"),
    )


def test_google_status_values_outside_active_and_suspended_are_row_errors() -> None:
    parsed = parse(GOOGLE_HEADER + "\n" + google_row("Ada", "L", "ada@example.org", "Sleeping"))
    assert [str(error) for error in parsed.errors] == [
        "line 2: Status [READ ONLY] must be true/false, yes/no, 1/0 or Active/Suspended, not 'Sleeping'"
    ]


def test_a_file_whose_accounts_all_lack_a_mailbox_is_refused() -> None:
    text = ENTRA_HEADER + "\n" + entra_row("svc@contoso.onmicrosoft.example", "Svc", "")
    assert [str(error) for error in parse(text).errors] == [
        "line 3: the file lists nobody with an email address; an import never empties a directory"
    ]


@pytest.mark.parametrize(
    "text",
    [
        "email;name;active\nada@x.example;Lovelace, Ada;yes\nbob@x.example;Bob;no\n",  # Excel, European locales
        "email\tname\tactive\nada@x.example\tLovelace, Ada\tyes\nbob@x.example\tBob\tno\n",  # tab-separated
        'sep=,\nemail,name,active\nada@x.example,"Lovelace, Ada",yes\nbob@x.example,Bob,no\n',  # Excel's sep= line
        "sep=;\r\nemail;name;active\r\nada@x.example;Lovelace, Ada;yes\r\nbob@x.example;Bob;no\r\n",
        '"sep=;"\nemail;name;active\nada@x.example;Lovelace, Ada;yes\nbob@x.example;Bob;no\n',
    ],
)
def test_the_delimiter_is_read_off_the_file(text: str) -> None:
    page = page_of(text)
    assert [(user.email, user.display_name, user.active) for user in page.users] == [
        ("ada@x.example", "Lovelace, Ada", True),
        ("bob@x.example", "Bob", False),
    ]


def test_lines_after_a_sep_line_are_counted_from_the_top_of_the_file() -> None:
    parsed = parse("sep=;\nemail;name\nnot-an-address;Ada\n")
    assert [str(error) for error in parsed.errors] == ["line 3: 'not-an-address' is not an email address"]


def test_utf16_unicode_text_from_excel() -> None:
    data = "email\tname\nada@x.example\tZoë\n".encode("utf-16")  # with its byte-order mark
    parsed = parse_bytes(data)
    assert parsed.page is not None
    assert parsed.page.users[0].display_name == "Zoë"


def test_a_wrong_separator_shows_the_one_cell_read() -> None:
    # A header read as one cell is shown as such: the admin sees what went wrong.
    (error,) = parse("e-post|navn\nada@x.example|Ada\n").errors
    assert "found 'e-post|navn'" in str(error)


def test_first_and_last_name_make_the_name_when_there_is_no_name_column() -> None:
    page = page_of("Email Address [Required],First Name [Required],Last Name [Required]\na@x.example,Ann,Lee\n")
    assert page.users[0].display_name == "Ann Lee"


def test_a_block_sign_in_column_means_the_opposite_of_enabled() -> None:
    # Entra's bulk-user templates: a version line, then "Block sign in (Yes/No) [accountEnabled]".
    text = (
        "version:v1.0\n"
        "Name [displayName] Required,User name [userPrincipalName] Required,Email [mail],"
        "Block sign in (Yes/No) [accountEnabled] Required\n"
        "Ada,ada@x.example,ada@x.example,No\n"
        "Bob,bob@x.example,bob@x.example,Yes\n"
    )
    page = page_of(text)
    assert [(user.username, user.display_name, user.active) for user in page.users] == [
        ("ada@x.example", "Ada", True),
        ("bob@x.example", "Bob", False),
    ]
