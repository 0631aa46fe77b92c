"""Real exports from outside (../shared/reference/data/csv/*.csv, when present): each one is read, or
refused with errors that name their lines; never an exception, never a person without an identity."""

from __future__ import annotations

import pytest

from connectors.csv import parse_bytes
from connectors.csv.parse import EMAIL
from tests.conftest import SHARED_DATA, shared_data

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
