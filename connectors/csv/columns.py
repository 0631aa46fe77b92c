"""Which column holds what: our own header, and the exports identity providers offer as downloaded.

- ours: `email,name,teams,active`;
- Microsoft Entra ID, Users > Download users: `userPrincipalName,displayName,surname,mail,givenName,
  objectId (id in the newer admin centre),userType,…,accountEnabled,…` (accountEnabled True/False;
  `mail` empty for an account without a mailbox; userType Member/Guest);
- Google Admin console, Users > Download users: `First Name [Required],Last Name [Required],Email
  Address [Required],…,Org Unit Path [Required],…,Status [READ ONLY],…` (Status Active/Suspended).

A header cell is read without case, spacing or bracketed notes (`[Required]`, `[READ ONLY]`), and the
text inside brackets counts too (Entra's bulk templates write `User name [userPrincipalName]`). Each
field takes the first of its names the header has, so `email` wins over an `E-Mail` column beside it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# Field -> the header names that hold it, best first.
FIELDS: dict[str, tuple[str, ...]] = {
    "email": ("email", "mail", "email address", "primary email", "e-mail", "work email", "emailaddress"),
    "username": ("userprincipalname", "user principal name", "username", "user name", "sign-in name", "upn"),
    "name": ("name", "displayname", "display name", "full name", "fullname"),
    "given_name": ("givenname", "given name", "first name", "firstname"),
    "family_name": ("surname", "last name", "lastname", "family name", "familyname"),
    "teams": ("teams",),
    # Before `active`: Entra's bulk templates write "Block sign in (Yes/No) [accountEnabled]", the opposite.
    "blocked": ("block sign in", "blocked", "block credential", "sign-in blocked", "sign in blocked"),
    "active": ("active", "accountenabled", "account enabled", "status", "account status", "enabled"),
    "user_type": ("usertype", "user type"),
    "org_unit": ("org unit path", "orgunitpath"),
}
# Where each format's name for the address comes from, for the message when none is found.
EXPECTED = (
    "email (this format: email,name,teams,active), mail or userPrincipalName (Microsoft Entra ID's "
    "Download users), Email Address [Required] (Google Admin console's Download users)"
)
_BRACKETED = re.compile(r"\[([^\]]*)\]")
_PARENTHESISED = re.compile(r"\([^)]*\)")
_NOTES = re.compile(r"\b(?:required|optional)\b", re.IGNORECASE)  # Entra templates write them unbracketed


def names_of(cell: str) -> set[str]:
    """The names a header cell answers to: its text outside brackets and parentheses (`(Yes/No)`) without
    `Required`/`Optional`, and each bracket's content."""
    cleaned = cell.replace("\ufeff", "").strip().strip('"')
    inside = _BRACKETED.findall(cleaned)
    outside = _NOTES.sub(" ", _PARENTHESISED.sub(" ", _BRACKETED.sub(" ", cleaned)))
    return {" ".join(part.split()).lower() for part in (outside, *inside) if part.strip()}


@dataclass(frozen=True, slots=True)
class Header:
    """The column index of each field the header has."""

    columns: dict[str, int]
    labels: dict[str, str]  # each field's column as the header writes it, for messages
    line: int

    def has(self, name: str) -> bool:
        return name in self.columns


class HeaderError(ValueError):
    """The header cannot be used; the message says what was found and what is expected."""


def read_header(cells: list[str], line: int) -> Header:
    """Where each field is, or HeaderError when no column holds an address or a column is named twice."""
    names = [names_of(cell) for cell in cells]
    columns: dict[str, int] = {}
    for field, aliases in FIELDS.items():
        taken = set(columns.values())  # a column holds one field: the first that names it
        for alias in aliases:
            found = [index for index, cell_names in enumerate(names) if alias in cell_names and index not in taken]
            if len(found) > 1:
                raise HeaderError(f"the column {cells[found[1]].strip()!r} appears twice")
            if found:
                columns[field] = found[0]
                break
    if "email" not in columns:
        shown = ", ".join(repr(cell.strip()) for cell in cells[:12] if cell.strip())
        more = f" and {len(cells) - 12} more" if len(cells) > 12 else ""
        raise HeaderError(
            f"the header has no email column: found {shown or 'nothing'}{more}; expected {EXPECTED}. "
            "A file saved with another separator is read too (',' ';' or tab, or Excel's 'sep=' first line)."
        )
    return Header(columns, {field: cells[index].strip() for field, index in columns.items()}, line)
