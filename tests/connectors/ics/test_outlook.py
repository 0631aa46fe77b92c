"""What Outlook and Exchange write, read as their own calendars show it; departures from RFC 5545 noted.

- an all-day series whose UNTIL is local midnight written in UTC keeps its last day;
- Windows display names in TZID (Exchange 2010, Outlook Web App), with no VTIMEZONE, are their zones;
  a TZID nothing resolves is read in the feed's or the organisation's zone and noted with the UID;
- malformed RRULEs keep only what the event names outright, with a note; end-before-start is noted.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from connectors.ics.expand import Expansion
from connectors.ics.rules import BadRule, check
from connectors.ics.zones import iana_name
from tests.connectors.ics.conftest import WIDE, at, calendar, read, window

BERLIN = """BEGIN:VTIMEZONE
TZID:W. Europe Standard Time
BEGIN:STANDARD
DTSTART:16011028T030000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=10
TZOFFSETFROM:+0200
TZOFFSETTO:+0100
END:STANDARD
BEGIN:DAYLIGHT
DTSTART:16010325T020000
RRULE:FREQ=YEARLY;BYDAY=-1SU;BYMONTH=3
TZOFFSETFROM:+0100
TZOFFSETTO:+0200
END:DAYLIGHT
END:VTIMEZONE"""
# Fridays 4 June to 2 July 2021; Outlook writes the end as 2 July 00:00 in Berlin, in UTC.
OFFICE_FRIDAYS = """UID:040000008200E00074C5B7101A82E0080000000046E5
SUMMARY:Office
DTSTART;VALUE=DATE:20210604
DTEND;VALUE=DATE:20210605
RRULE:FREQ=WEEKLY;BYDAY=FR;UNTIL=20210701T220000Z"""
SUMMER = window(at(2021, 5, 1), at(2021, 8, 1))


def days(found: Expansion, zone: str = "Europe/Berlin") -> list[date]:
    """The local days all-day occurrences fall on."""
    return [event.start.astimezone(ZoneInfo(zone)).date() for event in found.events]


def test_an_all_day_series_ending_at_local_midnight_in_utc_keeps_its_last_day() -> None:
    data = calendar(OFFICE_FRIDAYS, head="PRODID:-//Microsoft Corporation//Outlook 16.0 MIMEDIR//EN\n" + BERLIN)

    found = read(data, SUMMER, default_timezone="Europe/Berlin")

    assert days(found) == [date(2021, 6, 4), date(2021, 6, 11), date(2021, 6, 18), date(2021, 6, 25), date(2021, 7, 2)]
    assert found.notes == ()  # this is what the series says, read right: nothing to note


@pytest.mark.parametrize(
    ("head", "default_timezone"),
    [
        ("X-WR-TIMEZONE:Europe/Berlin", None),  # the feed says its zone
        ("", "Europe/Berlin"),  # the organisation's zone, no VTIMEZONE in the feed
    ],
)
def test_the_series_zone_comes_from_the_feed_or_the_organisation(head: str, default_timezone: str | None) -> None:
    found = read(calendar(OFFICE_FRIDAYS, head=head), SUMMER, default_timezone=default_timezone)
    assert days(found)[-1] == date(2021, 7, 2)


def test_an_until_before_local_midnight_still_ends_the_day_before() -> None:
    # 20210701T215959Z is 1 July 23:59:59 in Berlin: 2 July is not in the series.
    body = OFFICE_FRIDAYS.replace("UNTIL=20210701T220000Z", "UNTIL=20210701T215959Z")
    found = read(calendar(body, head="X-WR-TIMEZONE:Europe/Berlin"), SUMMER)
    assert days(found)[-1] == date(2021, 6, 25)


@pytest.mark.parametrize(
    ("tzid", "utc_start"),
    [
        ("(UTC-05:00) Eastern Time (US & Canada)", datetime(2021, 6, 1, 13, tzinfo=UTC)),
        ("(GMT+10:00) Canberra, Melbourne, Sydney", datetime(2021, 5, 31, 23, tzinfo=UTC)),
        ("(UTC+01:00) Amsterdam, Berlin, Bern, Rome, Stockholm, Vienna", datetime(2021, 6, 1, 7, tzinfo=UTC)),
        ("(UTC+05:30) Chennai, Kolkata, Mumbai, New Delhi", datetime(2021, 6, 1, 3, 30, tzinfo=UTC)),
        ("Pacific Standard Time", datetime(2021, 6, 1, 16, tzinfo=UTC)),  # a Windows id without its VTIMEZONE
    ],
)
def test_windows_display_names_without_a_vtimezone_are_their_zones(tzid: str, utc_start: datetime) -> None:
    body = f'UID:ews-1\nSUMMARY:Standup\nDTSTART;TZID="{tzid}":20210601T090000\nDTEND;TZID="{tzid}":20210601T093000'

    found = read(calendar(body), SUMMER, default_timezone="Europe/London")

    (event,) = found.events
    assert event.start == utc_start
    assert event.timezone == iana_name(tzid)
    assert found.notes == ()


def test_exdates_in_a_display_name_zone_follow_it() -> None:
    tzid = "(UTC-05:00) Eastern Time (US & Canada)"
    body = (
        f'UID:ews-2\nSUMMARY:Weekly\nDTSTART;TZID="{tzid}":20210601T090000\nDURATION:PT30M\n'
        f'RRULE:FREQ=WEEKLY;COUNT=3\nEXDATE;TZID="{tzid}":20210608T090000'
    )
    found = read(calendar(body), SUMMER)
    assert [event.start for event in found.events] == [
        datetime(2021, 6, 1, 13, tzinfo=UTC),
        datetime(2021, 6, 15, 13, tzinfo=UTC),
    ]


@pytest.mark.parametrize(
    ("head", "default_timezone", "zone", "where"),
    [
        ("X-WR-TIMEZONE:America/Chicago", "Europe/London", "America/Chicago", "the feed's X-WR-TIMEZONE"),
        ("", "Europe/London", "Europe/London", "the organisation's zone"),
        ("", None, "UTC", "UTC"),
    ],
)
def test_a_tzid_nothing_resolves_is_read_in_the_calendars_zone_and_noted(
    head: str, default_timezone: str | None, zone: str, where: str
) -> None:
    body = 'UID:moon-1\nSUMMARY:Odd\nDTSTART;TZID="Moon Base Time":20210601T090000\nDURATION:PT1H'

    found = read(calendar(body, head=head), SUMMER, default_timezone=default_timezone)

    (event,) = found.events
    assert event.start == at(2021, 6, 1, 9, zone=zone)
    assert found.notes == (
        f"unknown time zone TZID 'Moon Base Time' (no VTIMEZONE; not an IANA, Windows or Windows display name): "
        f"read in {zone} ({where}) for 1 event(s): moon-1",
    )


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=WEEKLY;COUNT=3;UNTIL=20210701T000000Z", "it has both UNTIL and COUNT"),
        ("FREQ=WEEKLY;BYMONTHDAY=32", "BYMONTHDAY value '32' is out of range"),
        ("FREQ=MONTHLY;BYMONTHDAY=15;BYWEEKNO=3", "BYWEEKNO cannot go with FREQ=MONTHLY"),
        ("WEEKLY", "FREQ is missing"),  # icalendar reads it as an empty rule
        ("COUNT=3", "FREQ is missing"),
        ("FREQ=FORTNIGHTLY", "FREQ=FORTNIGHTLY is not a frequency"),
        ("FREQ=DAILY;COUNT=0", "COUNT=0 is not a whole number from 1"),
        ("FREQ=WEEKLY;INTERVAL=-1", "INTERVAL=-1 is not a whole number from 1"),
        ("FREQ=WEEKLY;UNTL=20210701", "UNTL is not a part of a recurrence rule"),
        ("FREQ=WEEKLY;BYDAY=XX", "BYDAY value 'XX' is not a weekday"),
        ("FREQ=WEEKLY;BYDAY=2MO", "BYDAY value '2MO' has an ordinal FREQ=WEEKLY cannot take"),
        ("FREQ=DAILY;UNTIL=2021-07-01", "UNTIL=2021-07-01 is not a date or date-time"),
    ],
)
def test_a_malformed_rule_keeps_the_first_occurrence_and_is_noted(rule: str, reason: str) -> None:
    body = f"UID:bad-rule-7\nSUMMARY:Series\nDTSTART:20210601T090000Z\nDURATION:PT1H\nRRULE:{rule}"
    fine = "UID:fine\nSUMMARY:Fine\nDTSTART:20210602T090000Z\nDURATION:PT1H"

    found = read(calendar(body, fine), SUMMER)

    assert [(event.title, event.start) for event in found.events] == [
        ("Series", datetime(2021, 6, 1, 9, tzinfo=UTC)),
        ("Fine", datetime(2021, 6, 2, 9, tzinfo=UTC)),
    ]
    (note,) = found.notes
    assert note.startswith("read 1 series with a malformed RRULE as the occurrences they name outright")
    assert "bad-rule-7: RRULE " in note
    assert reason in note


def test_a_malformed_rule_keeps_its_rdates() -> None:
    body = (
        "UID:bad-rule-8\nSUMMARY:Series\nDTSTART:20210601T090000Z\nDURATION:PT1H\n"
        "RRULE:FREQ=WEEKLY;BYMONTHDAY=32\nRDATE:20210610T090000Z"
    )
    found = read(calendar(body), SUMMER)
    assert [event.start.date() for event in found.events] == [date(2021, 6, 1), date(2021, 6, 10)]


@pytest.mark.parametrize(
    "rule",
    [
        "FREQ=WEEKLY;BYDAY=MO,WE,FR;UNTIL=20211231T235959Z",
        "FREQ=MONTHLY;BYDAY=-1FR",
        "FREQ=YEARLY;BYMONTH=3;BYDAY=-1SU",
        "FREQ=YEARLY;BYWEEKNO=20;BYDAY=MO",
        "FREQ=MONTHLY;BYSETPOS=-1;BYDAY=MO,TU,WE,TH,FR",
        "FREQ=DAILY;INTERVAL=2;COUNT=10;WKST=MO",
        "FREQ=MINUTELY;BYHOUR=9;BYMINUTE=0,30;BYSECOND=0;COUNT=4",
        "freq=weekly;byday=tu",  # lower case: RFC 5545 names are case-insensitive
        "FREQ=WEEKLY;X-NAME=1;COUNT=2",  # x-names are allowed
        "RSCALE=GREGORIAN;FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=29;SKIP=FORWARD",  # RFC 7529
    ],
)
def test_well_formed_rules_pass(rule: str) -> None:
    check(rule)  # raises BadRule otherwise


def test_check_tidies_the_spaces_exchange_writes() -> None:
    assert check("FREQ=DAILY;BYDAY=MO, TU, WE;WKST=SU;") == "FREQ=DAILY;BYDAY=MO,TU,WE;WKST=SU"


@pytest.mark.parametrize(
    ("rule", "reason"),
    [
        ("FREQ=DAILY;=3", "is not NAME=VALUE"),
        ("WEEKLY", "'WEEKLY' is not NAME=VALUE"),
        ("FREQ=DAILY;COUNT=3;COUNT=4", "COUNT is given twice"),  # icalendar alone keeps the last
        ("", "FREQ is missing"),
    ],
)
def test_check_says_what_is_wrong(rule: str, reason: str) -> None:
    with pytest.raises(BadRule, match=reason):
        check(rule)


def test_an_event_ending_before_it_starts_is_noted_with_its_uid() -> None:
    body = "UID:backwards-1\nSUMMARY:Oops\nDTSTART:20210601T093000Z\nDTEND:20210601T090000Z"

    found = read(calendar(body), SUMMER)

    (event,) = found.events
    assert (event.start, event.end) == (datetime(2021, 6, 1, 9, tzinfo=UTC), datetime(2021, 6, 1, 9, 30, tzinfo=UTC))
    assert found.notes == (
        "1 event(s) end before they start; read with start and end swapped "
        "(backwards-1 (DTSTART 2021-06-01T09:30:00+00:00, DTEND 2021-06-01T09:00:00+00:00))",
    )


@pytest.mark.parametrize(
    ("name", "zone"),
    [
        ("(UTC-08:00) Pacific Time (US & Canada)", "America/Los_Angeles"),
        ("(UTC-06:00) Central Time (US & Canada)", "America/Chicago"),
        ("(UTC-07:00) Mountain Time (US & Canada)", "America/Denver"),
        ("(UTC-04:00) Atlantic Time (Canada)", "America/Halifax"),
        ("(UTC+00:00) Dublin, Edinburgh, Lisbon, London", "Europe/Dublin"),
        ("(GMT) Greenwich Mean Time : Dublin, Edinburgh, Lisbon, London", "Europe/Dublin"),
        ("(UTC) Coordinated Universal Time", "UTC"),
        ("(UTC+01:00) Brussels, Copenhagen, Madrid, Paris", "Europe/Brussels"),
        ("(UTC+02:00) Helsinki, Kyiv, Riga, Sofia, Tallinn, Vilnius", "Europe/Helsinki"),
        ("(UTC+03:00) Moscow, St. Petersburg", "Europe/Moscow"),
        ("(UTC+09:00) Osaka, Sapporo, Tokyo", "Asia/Tokyo"),
        ("(UTC+12:00) Auckland, Wellington", "Pacific/Auckland"),
        ("(UTC-03:30) Newfoundland", "Canada/Newfoundland"),
        ("(UTC+05:45) Kathmandu", "Asia/Kathmandu"),
        ("W. Europe Standard Time", "Europe/Berlin"),
        ("w. europe standard time", "Europe/Berlin"),
        ("tzone://Microsoft/Utc", "Etc/UTC"),  # as CLDR maps Windows UTC
        ("Europe/Paris", "Europe/Paris"),
        ("(UTC-08:00) Sydney", None),  # a city at another offset is not taken
        ("(UTC+01:00) West Central Africa", None),  # no place deskbridge can find
        ("Eastern Time", None),
        ("../etc/passwd", None),
    ],
)
def test_zone_names(name: str, zone: str | None) -> None:
    assert iana_name(name) == zone


def test_wide_reads_of_the_new_rules_stay_sorted() -> None:
    found = read(calendar(OFFICE_FRIDAYS, head="X-WR-TIMEZONE:Europe/Berlin"), WIDE)
    starts = [event.start for event in found.events]
    assert starts == sorted(starts)


def test_a_negative_duration_is_noted_too() -> None:
    found = read(calendar("UID:backwards-2\nSUMMARY:Oops\nDTSTART:20210601T090000Z\nDURATION:-PT1H"), SUMMER)

    (event,) = found.events
    assert (event.start, event.end) == (datetime(2021, 6, 1, 8, tzinfo=UTC), datetime(2021, 6, 1, 9, tzinfo=UTC))
    assert found.notes == (
        "1 event(s) end before they start; read with start and end swapped "
        "(backwards-2 (DTSTART 2021-06-01T09:00:00+00:00, DURATION -PT1H))",
    )


@pytest.mark.parametrize(
    ("tzid", "default_timezone", "start", "read_in"),
    [
        # No place matched: read at the offset the name states, not hours off in London.
        ("(UTC-03:00) Brasilia", "Europe/London", datetime(2021, 6, 1, 12, tzinfo=UTC), "Etc/GMT+3 (the offset"),
        ("(UTC+05:30) Somewhere Else", None, datetime(2021, 6, 1, 3, 30, tzinfo=UTC), "UTC+05:30 (the offset"),
        # The organisation's zone has the stated offset: read there (with its summer time).
        ("(UTC+00:00) Somewhere Else", "Europe/London", datetime(2021, 6, 1, 8, tzinfo=UTC), "Europe/London (the org"),
    ],
)
def test_a_display_name_no_place_matches_keeps_its_stated_offset(
    tzid: str, default_timezone: str | None, start: datetime, read_in: str
) -> None:
    body = f'UID:ews-9\nSUMMARY:Call\nDTSTART;TZID="{tzid}":20210601T090000\nDURATION:PT1H'

    found = read(calendar(body), SUMMER, default_timezone=default_timezone)

    assert [event.start for event in found.events] == [start]
    (note,) = found.notes
    assert f"read in {read_in}" in note
    assert note.endswith("for 1 event(s): ews-9")
