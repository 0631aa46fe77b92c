"""POST /v1/connections/{id}/import with real exports: people linked to existing members are said and
named; accounts without a mailbox and guests are skipped with a note; any dialect a spreadsheet writes."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from store.models import Member, MemberStatus
from tests.api.v1.conftest import nothing_written
from tests.api.v1.test_connections_csv import connect, send, states, use_auto_accept
from tests.conftest import Org
from tests.connectors.csv.test_exports import ENTRA_HEADER, GOOGLE_HEADER, entra_row, google_row


def display_names(factory: sessionmaker[Session], org: Org) -> dict[str, str]:
    with factory() as session:
        rows = session.scalars(select(Member).where(Member.organisation_id == org.organisation.id))
        return {row.email: row.display_name for row in rows}


def test_a_member_added_by_hand_is_listed_as_linked_and_takes_the_file_name(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    text = "email,name\nwill@acme.example,Will Turner\nada@acme.example,Ada\n"

    with nothing_written(api_factory, but={"sync_plans"}):
        plan = send(client, org, connection_id, text, dry_run=True)
    done = send(client, org, connection_id, text)

    for result in (plan, done):
        assert result["people"] == {"added": ["ada@acme.example"], "linked": ["will@acme.example"]}
        assert (result["counts"]["added"], result["counts"]["linked"]) == (1, 1)
    assert display_names(api_factory, org)["will@acme.example"] == "Will Turner"
    # Linked means the file now speaks for him: a file that leaves him out removes him.
    gone = send(client, org, connection_id, "email,name\nada@acme.example,Ada\n")
    assert gone["people"] == {"removed": ["will@acme.example"]}
    assert states(api_factory, org)["will@acme.example"] is MemberStatus.REMOVED


def test_the_entra_download_imports_and_notes_who_it_skips(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    text = "\ufeff" + "\r\n".join(
        [
            ENTRA_HEADER,
            entra_row("ada@acme.example", "Ada Lovelace", "ada@acme.example"),
            entra_row("scanner@acme.onmicrosoft.example", "Scanner", ""),
            entra_row(
                "eve_partner.example#EXT#@acme.onmicrosoft.example", "Eve", "eve@partner.example", user_type="Guest"
            ),
            entra_row("carol@acme.example", "Carol", "carol@acme.example", enabled="False"),
        ]
    )

    done = send(client, org, connection_id, text)

    assert done["applied"] is True
    assert done["people"]["added"] == ["ada@acme.example"]
    assert done["people"]["skipped"] == [
        "scanner@acme.onmicrosoft.example",
        "eve_partner.example#ext#@acme.onmicrosoft.example",
    ]
    assert done["counts"]["skipped"] == 2
    assert any("no mailbox" in note and "scanner@acme.onmicrosoft.example" in note for note in done["notes"])
    assert any("guest" in note for note in done["notes"])
    assert "carol@acme.example" not in states(api_factory, org)  # disabled: never brought in


def test_the_google_admin_download_follows_status(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    use_auto_accept(client, org)
    connection_id = connect(client, org)
    header_and = GOOGLE_HEADER + "\n"
    send(
        client,
        org,
        connection_id,
        header_and
        + google_row("Ada", "L", "ada@acme.example", "Active")
        + "\n"
        + google_row("Bob", "S", "bob@acme.example", "Active"),
    )

    done = send(
        client,
        org,
        connection_id,
        header_and
        + google_row("Ada", "L", "ada@acme.example", "Active")
        + "\n"
        + google_row("Bob", "S", "bob@acme.example", "Suspended"),
    )

    assert done["people"] == {"removed": ["bob@acme.example"]}
    assert states(api_factory, org)["bob@acme.example"] is MemberStatus.REMOVED


def test_a_semicolon_file_with_excels_sep_line(
    client: TestClient, api_factory: sessionmaker[Session], org: Org
) -> None:
    connection_id = connect(client, org)

    plan = send(client, org, connection_id, "sep=;\r\nemail;name\r\nada@acme.example;Lovelace, Ada\r\n", dry_run=True)

    assert (plan["errors"], plan["people"]) == ([], {"invited": ["ada@acme.example"]})
