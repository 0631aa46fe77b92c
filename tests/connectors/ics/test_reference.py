"""Every real-world calendar of ../shared/reference/data/ics (see its MANIFEST.md), read through the reader.

None may crash: each gives events or a clean ConnectorError; the broken ones are reported (the whole
feed when icalendar cannot read it, else the one series that cannot be expanded, named in the notes);
where the MANIFEST states occurrence counts in a window, the reader's window gives the same.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from connectors.records import ConnectorError
from tests.conftest import SHARED_DATA
from tests.connectors.ics.conftest import WIDE, at, day, reference, titles, window

FILES = sorted(path.name for path in (SHARED_DATA / "ics").glob("*.ics")) or ["(reference data absent)"]

# The feed as a whole cannot be read: a stray line "X" (no colon) between components.
UNREADABLE = {"icalendar__issue_104_broken_calendar.ics": "Content line could not be parsed into parts: 'X'"}
# One series cannot be expanded; the rest of the feed (here: nothing else) still is.
SKIPPED: dict[str, str] = {}
# Repaired or read with a departure from RFC 5545, and said so (with the event's UID where it has one).
REPAIRED = {
    "icalevents__icloud.ics": "written as +MMSS",  # TZOFFSETFROM:+5328
    "nodeical__ms_timezones.ics": "inside their quoted TZID",  # DTSTART;TZID="…:20200609T090000"
    # UNTL= typo: the series keeps its DTSTART only
    "rie__bad_rrule_missing_until_event.ics": "malformed RRULE as the occurrences they name outright (DTSTART, RDATE) "
    "only (blabla: RRULE 'FREQ=WEEKLY;BYDAY=TH;WKST=SU;UNTL=20191023': UNTL is not a part of a recurrence rule)",
    # Exchange CDO's BYDAY=MO, TU, …: read without the spaces
    "icalendar__issue_165_missing_event.ics": "stray spaces in their lists (an event without UID: RRULE",
    "rie__end_before_start_event.ics": "1 event(s) end before they start; read with start and end swapped "
    "(UYDQSG9TH4DE0WM3QFL2J (DTSTART 2019-03-04T08:30:00+01:00, DTEND 2019-03-04T08:00:00+01:00))",
}


@pytest.mark.parametrize("name", FILES)
def test_every_calendar_reads_or_fails_cleanly(name: str) -> None:
    if name in UNREADABLE:
        with pytest.raises(ConnectorError) as caught:
            reference(name, WIDE)
        assert caught.value.action_required
        assert caught.value.message.startswith("ICS feed test://feed/…: not valid iCalendar: ")
        assert UNREADABLE[name] in caught.value.message
        return
    found = reference(name, WIDE)
    skipped = [note for note in found.notes if note.startswith("skipped")]
    if name in SKIPPED:
        assert len(skipped) == 1
        assert skipped[0].startswith(f"skipped 1 series that could not be read ({SKIPPED[name]}")
        assert found.events == ()
        return
    assert skipped == []
    assert found.events, "every other calendar has occurrences between 2000 and 2030"
    if name in REPAIRED:
        assert any(REPAIRED[name] in note for note in found.notes), found.notes
    else:
        assert found.notes == ()  # nothing noted that did not happen
    for event in found.events:
        assert event.start.utcoffset() == timedelta(0)
        assert event.end.utcoffset() == timedelta(0)
        assert event.end >= event.start
        assert event.etag
    assert len({event.event_id for event in found.events}) == len(found.events)


# rie test_issue_75_range_parameter.py: RANGE=THISANDFUTURE moves and resizes the instances after it.
ISSUE_75 = [
    ("20240901T000000Z", "20240911T235959Z", 6, "ORIGINAL EVENT"),
    ("20240901T000000Z", "20240913T000000Z", 6, "ORIGINAL EVENT"),
    ("20240901T000000Z", "20240913T235959Z", 7, "MODIFIED EVENT"),
    ("20240901T000000Z", "20240914T235959Z", 8, None),
    ("20240901T000000Z", "20240915T235959Z", 9, None),
    ("20240901T000000Z", "20240917T235959Z", 10, None),
    ("20240901T000000Z", "20240919T235959Z", 11, None),
    ("20240901T000000Z", "20240921T235959Z", 11, None),
    ("20240901T000000Z", "20240922T000000Z", 11, None),
    ("20240901T000000Z", "20240922T235959Z", 12, "EDITED EVENT"),
    ("20240901T000000Z", "20240923T000000Z", 12, None),
    ("20240901T000000Z", "20240923T235959Z", 12, None),
    ("20240901T000000Z", "20240924T235959Z", 13, None),
    ("20240901T000000Z", "20240925T235959Z", 13, None),
    ("20240913T000000Z", "20240922T000000Z", 5, "MODIFIED EVENT"),
    ("20240913T000000Z", "20240922T235959Z", 6, "EDITED EVENT"),
    ("20240924T000000Z", "20240925T235959Z", 1, "EDITED EVENT"),
]


def utc(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


@pytest.mark.parametrize(("start", "end", "count", "last"), ISSUE_75)
def test_range_thisandfuture_counts(start: str, end: str, count: int, last: str | None) -> None:
    found = reference("rie__issue_75_range_parameter.ics", window(utc(start), utc(end))).events
    assert len(found) == count
    if last:
        assert found[-1].title == last


@pytest.mark.parametrize("date", ["0901", "0911", "0913", "0914", "0915", "0917", "0919", "0922", "0924", "0926"])
def test_range_thisandfuture_one_instance_a_day(date: str) -> None:
    found = reference("rie__issue_75_range_parameter.ics", day(2024, int(date[:2]), int(date[2:]))).events
    assert len(found) == 1


def test_range_thisandfuture_times_and_stable_instance_ids() -> None:
    found = {e.start.date().isoformat(): e for e in reference("rie__issue_75_range_parameter.ics", WIDE).events}
    for date in ("2024-09-13", "2024-09-17"):
        assert (found[date].start.time().isoformat(), found[date].end.time().isoformat()) == ("09:00:00", "16:00:00")
    for date in ("2024-09-22", "2024-09-24"):
        assert (found[date].start.time().isoformat(), found[date].end.time().isoformat()) == ("14:22:00", "16:13:00")
    # Moved instances keep the id of the slot they were moved from, not the override's.
    assert found["2024-09-17"].event_id == "210/2024-09-17T12:00:00Z"
    assert found["2024-09-24"].event_id == "210/2024-09-23T12:00:00Z"
    assert found["2024-09-14"].event_id == "210/2024-09-14T09:00:00Z"  # the RDATE, shifted by -3 h


def test_moved_instance_leaves_its_old_day() -> None:
    name = "rie__issue_62_moved_event.ics"  # X-WR-TIMEZONE Europe/Berlin; override before its master
    assert reference(name, day(2021, 12, 31, zone="Europe/Berlin")).events == ()
    assert len(reference(name, day(2021, 12, 17, zone="Europe/Berlin")).events) == 1
    december = window(at(2021, 12, 1, zone="Europe/Berlin"), at(2022, 1, 1, zone="Europe/Berlin"))
    assert len(reference(name, december).events) == 1


def test_all_day_event_does_not_leak_into_neighbouring_days() -> None:
    name = "rie__issue_44_double_event.ics"  # all-day on 2020-08-14, X-WR-TIMEZONE Europe/London
    assert titles(reference(name, day(2020, 8, 14, zone="Europe/London")).events) == ["test2"]
    assert reference(name, day(2020, 8, 13, zone="Europe/London")).events == ()
    assert reference(name, day(2020, 8, 15, zone="Europe/London")).events == ()
    (event,) = reference(name, day(2020, 8, 14, zone="Europe/London")).events
    assert event.all_day
    assert event.timezone == "Europe/London"
    assert (event.start, event.end) == (at(2020, 8, 13, 23), at(2020, 8, 14, 23))  # BST midnight to midnight


@pytest.mark.parametrize(
    ("minute", "count"),
    [
        ((12, 0), 1),
        ((11, 59), 0),
        ((12, 59), 1),
        ((13, 0), 0),
        ((21, 0), 1),
        ((20, 59), 0),
        ((21, 59), 1),
        ((22, 0), 0),
    ],
)
def test_x_wr_timezone_utc_times(minute: tuple[int, int], count: int) -> None:
    start = at(2021, 12, 22, *minute, zone="America/New_York")
    found = reference("rie__x_wr_timezone_simple_events_issue_59.ics", window(start, timedelta(minutes=1))).events
    assert len(found) == count
    assert all(event.timezone == "America/New_York" for event in found)


def test_germany_mothers_day() -> None:
    (event,) = reference("rie__Germany.ics", day(2014, 5, 11)).events  # no zone in the feed: UTC days
    assert event.title == "Germany: Mother's Day [Not a public holiday]"
    assert event.all_day
    assert event.timezone is None


@pytest.mark.parametrize("zone", ["Europe/Berlin", "Asia/Ho_Chi_Minh", "America/Panama"])
def test_all_day_in_the_members_zone_when_the_feed_names_none(zone: str) -> None:
    # rie's test_time_zones_differ: new year's first hour, wherever you are, is on new year's day.
    span = window(at(2019, 1, 1, zone=zone), timedelta(hours=1))
    found = reference("rie__Germany.ics", span, default_timezone=zone).events
    assert len(found) == 1
    assert found[0].timezone == zone


def test_floating_until_and_utc_exdate() -> None:
    span = window(at(2020, 4, 25, zone="Europe/Berlin"), at(2020, 4, 30, zone="Europe/Berlin"))
    assert len(reference("rie__issue_27_t1.ics", span).events) == 2  # two events, the EXDATE takes one


def test_cancelled_instance_is_listed_as_cancelled() -> None:
    found = [
        reference("rie__issue_18_cancel_status.ics", day(2020, 1, d, zone="Europe/Berlin")).events for d in (28, 29, 30)
    ]
    assert [len(events) for events in found] == [1, 1, 1]
    assert [events[0].status for events in found] == ["confirmed", "cancelled", "confirmed"]
    assert [events[0].show_as for events in found] == ["busy", "free", "busy"]
    assert len({events[0].event_id for events in found}) == 3


def test_override_with_lower_sequence_still_wins() -> None:
    assert titles(reference("rie__recurrence_sequence_number.ics", day(2020, 9, 22)).events) == ["Modified event"]


def test_instant_inside_an_all_day_event() -> None:
    moment = at(2021, 12, 15, 17, 41, 1, zone="America/Los_Angeles")
    (event,) = reference("rie__issue_61_time_zone_error.ics", window(moment, moment)).events
    assert event.all_day


def test_override_whose_master_is_absent() -> None:
    found = reference("rie__issue_173_only_modifications_error.ics", day(2024, 1, 8, zone="Europe/Paris")).events
    uid = "_6krj2dhl74q34b9j60sj4b9k8h238b9p6gok2ba68gojgchl6cpj0h1o88_R20231009T130000@google.com"
    (event,) = [event for event in found if event.ical_uid == uid]
    assert event.recurrence_id == "2024-01-08T14:00:00Z"  # 15:00 Paris
    assert event.start == at(2024, 1, 8, 17, zone="Europe/Paris")
    assert event.event_id == f"{uid}/2024-01-08T14:00:00Z"


def test_end_before_start_is_swapped() -> None:
    (event,) = reference("rie__end_before_start_event.ics", window(at(2019, 1, 1), at(2020, 1, 1))).events
    assert (event.start, event.end) == (
        at(2019, 3, 4, 8, zone="Europe/Berlin"),
        at(2019, 3, 4, 8, 30, zone="Europe/Berlin"),
    )


def test_windows_zone_names_become_iana() -> None:
    (event,) = reference("icalendar__issue_836_do_not_quote_tzid.ics", WIDE).events  # 'Eastern Standard Time'
    assert event.timezone == "America/New_York"
    (event,) = reference("icalevents__small_time_frame.ics", day(2023, 5, 9, zone="America/Los_Angeles")).events
    assert event.timezone == "America/Los_Angeles"


def test_value_swallowed_by_quoted_tzid_is_repaired() -> None:
    june = window(at(2020, 6, 1), at(2020, 7, 1))
    found = [e for e in reference("nodeical__ms_timezones.ics", june).events if e.title == "Log Yesterday's Jira time"]
    assert found
    assert found[0].start == at(2020, 6, 9, 7)
    assert found[0].end.minute == 30
    assert found[0].timezone == "Europe/Berlin"  # W. Europe Standard Time


def test_exchange_export_with_overrides_and_busy_status() -> None:
    found = reference("icalevents__recurring_override.ics", window(at(2021, 11, 23), at(2021, 11, 24))).events
    assert [event.start.strftime("%H:%M") for event in found] == ["09:00", "10:45", "13:00"]  # 3rd moved from 12:00
    everything = reference("icalevents__recurring_override.ics", WIDE).events
    assert {event.show_as for event in everything} >= {"busy", "tentative", "free", "oof"}


def test_apple_statuses() -> None:
    found = {e.title: e for e in reference("nodeical__tentative-apple-calendar.ics", WIDE).events}
    statuses = {title: (event.status, event.show_as) for title, event in found.items()}
    assert statuses == {
        "Tentative": ("tentative", "tentative"),
        "Confirmed": ("confirmed", "busy"),
        "Cancelled": ("cancelled", "free"),
        "No Status": ("confirmed", "busy"),
    }


def test_meetup_phoenix() -> None:
    (event,) = reference("nodeical__meetup-timed-tz.ics", WIDE).events
    assert event.start == at(2011, 11, 10, 2)
    assert event.timezone == "America/Phoenix"


def test_yearly_all_day_with_a_tzid() -> None:
    # DTSTART;TZID=Europe/Berlin;VALUE=DATE (invalid, ownCloud): the day in Berlin, all day.
    found = reference("nodeical__yearly-recurring-unicode.ics", window(at(2013, 1, 1), at(2014, 1, 1))).events
    (event,) = found
    assert event.title == "Fête Nationale - Férié"
    assert event.all_day
    assert event.timezone == "Europe/Berlin"
    assert (event.start, event.end) == (at(2013, 7, 14, zone="Europe/Berlin"), at(2013, 7, 15, zone="Europe/Berlin"))


def test_icloud_feed_reads_after_the_repair() -> None:
    found = reference("icalevents__icloud.ics", WIDE)
    assert any("Apple Calendar bug" in note for note in found.notes)
    assert found.events
