"""When I Work's datetimes are parsed exactly, offsets and DST included, and nothing looser is taken."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.wheniwork.dates import DateError, fixed_zone, parse_datetime, query_window


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Fri, 07 Mar 2014 08:30:00 -0600", datetime(2014, 3, 7, 14, 30, tzinfo=UTC)),  # the document's example
        ("Fri, 14 Mar 2014 00:00:00 -0500", datetime(2014, 3, 14, 5, 0, tzinfo=UTC)),
        ("Sat, 25 Feb 2012 08:00:00 +0530", datetime(2012, 2, 25, 2, 30, tzinfo=UTC)),
        ("Sun, 1 Jun 2014 23:45:10 +1400", datetime(2014, 6, 1, 9, 45, 10, tzinfo=UTC)),  # an unpadded day
        ("Wed, 19 Feb 2014 10:51:33 +0000", datetime(2014, 2, 19, 10, 51, 33, tzinfo=UTC)),
        ("Wed, 19 Feb 2014 10:51:33 -0000", datetime(2014, 2, 19, 10, 51, 33, tzinfo=UTC)),
    ],
)
def test_the_documents_format_with_its_offset_becomes_aware_utc(text: str, expected: datetime) -> None:
    parsed = parse_datetime(text)
    assert parsed == expected
    assert parsed.utcoffset() == timedelta(0)


def test_offsets_across_the_switch_to_daylight_saving_time_keep_real_durations() -> None:
    # America/Chicago: 23:00 CST on 8 March and 03:00 CDT on 9 March are three hours apart, not four.
    before = parse_datetime("Sat, 08 Mar 2014 23:00:00 -0600")
    after = parse_datetime("Sun, 09 Mar 2014 03:00:00 -0500")
    assert after - before == timedelta(hours=3)
    # The document's own request runs from a -0600 start to a -0500 end.
    assert parse_datetime("Fri, 25 May 2012 17:00:00 -0500") == datetime(2012, 5, 25, 22, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    "text",
    [
        "Thu, 07 Mar 2014 08:30:00 -0600",  # 7 March 2014 was a Friday
        "Fri, 07 Mar 2014 08:30:00",  # no offset: would be naive
        "Fri, 07 Mar 14 08:30:00 -0600",  # two-digit year
        "Fri, 07 Mar 2014 08:30:00 CST",  # a zone name
        "2014-03-07T08:30:00-06:00",  # ISO 8601 is not what the API writes
        "Wed, Oct 21 2015 16:29:00 -0500",  # the document's one off-spec example
        "Tue, 29 Nov -001 18:00:00 -0600",  # PHP's zero date
        "Mon, 31 Feb 2014 08:30:00 -0600",
        "Fri, 07 Mar 2014 08:30:00 -0675",
        "Fri, 07 Mar 2014 08:30:00 -1500",
        "fri, 07 mar 2014 08:30:00 -0600",
        " Fri, 07 Mar 2014 08:30:00 -0600",
        "",
        None,
        1394202600,
    ],
)
def test_anything_else_is_refused_with_the_reason(text: object) -> None:
    with pytest.raises(DateError) as caught:
        parse_datetime(text)
    assert repr(text) in str(caught.value)


def test_the_query_window_is_widened_for_any_account_zone() -> None:
    start, end = datetime(2014, 3, 5, tzinfo=UTC), datetime(2014, 3, 6, 23, 30, tzinfo=UTC)
    assert query_window(start, end) == ("2014-03-04", "2014-03-08")


@pytest.mark.parametrize(
    ("offset", "zone"),
    [(-6, "Etc/GMT+6"), (-5, "Etc/GMT+5"), (0, "Etc/UTC"), (10, "Etc/GMT-10"), (5.5, None)],
)
def test_offsets_are_named_as_fixed_zones(offset: float, zone: str | None) -> None:
    assert fixed_zone(timedelta(hours=offset)) == zone
