"""Recurrence rules checked against RFC 5545 §3.3.10 before they are expanded, and read as Outlook means them.

The expander (dateutil underneath) reads many malformed rules without a word: `COUNT` and `UNTIL`
together, `BYMONTHDAY=32`, no `FREQ` at all, a part given twice. Each gives occurrences nobody wrote, so
a rule is checked first: spaces inside its lists (Exchange's `BYDAY=MO, TU`) are tidied, anything else
wrong makes the series keep only the occurrences it names outright (DTSTART, RDATE), said in a note.

An all-day series whose `UNTIL` is an instant (Outlook and Exchange write local midnight in UTC:
`UNTIL=20210701T220000Z` for a series in Berlin) ends on that instant's date in the series' own zone,
which is what the calendar that wrote it shows; compared in UTC, the last day would be lost.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, tzinfo

import icalendar

from connectors.ics.translate import moment

FREQUENCIES = frozenset({"SECONDLY", "MINUTELY", "HOURLY", "DAILY", "WEEKLY", "MONTHLY", "YEARLY"})
WEEKDAYS = frozenset({"MO", "TU", "WE", "TH", "FR", "SA", "SU"})
# Part -> (smallest, largest, may be negative).
_RANGES = {
    "BYSECOND": (0, 60, False),
    "BYMINUTE": (0, 59, False),
    "BYHOUR": (0, 23, False),
    "BYMONTHDAY": (1, 31, True),
    "BYYEARDAY": (1, 366, True),
    "BYWEEKNO": (1, 53, True),
    "BYMONTH": (1, 12, False),
    "BYSETPOS": (1, 366, True),
}
# Parts RFC 5545 forbids with some frequencies ("MUST NOT be specified when…").
_NOT_WITH = {
    "BYMONTHDAY": frozenset({"WEEKLY"}),
    "BYYEARDAY": frozenset({"DAILY", "WEEKLY", "MONTHLY"}),
    "BYWEEKNO": FREQUENCIES - {"YEARLY"},
}
# RSCALE and SKIP are RFC 7529's (non-Gregorian calendars): well-formed, left to the expander.
_KNOWN = frozenset({"FREQ", "UNTIL", "COUNT", "INTERVAL", "BYDAY", "WKST", "RSCALE", "SKIP", *_RANGES})
_DAY = re.compile(r"(?P<ordinal>[+-]?\d{1,2})?(?P<day>[A-Z]{2})")
_UNTIL = re.compile(r"\d{8}(?:T\d{6}Z?)?")


class BadRule(ValueError):
    """What is wrong with a recurrence rule, in words."""


def check(text: str) -> str:
    """The rule with its lists tidied, or BadRule saying what breaks RFC 5545."""
    parts: dict[str, str] = {}
    for chunk in text.split(";"):
        if not chunk.strip():
            continue
        name, equals, value = (piece.strip() for piece in chunk.partition("="))
        name = name.upper()
        if not equals or not name or not value:
            raise BadRule(f"{chunk.strip()!r} is not NAME=VALUE")
        if name in parts:
            raise BadRule(f"{name} is given twice")
        if not name.startswith("X-") and name not in _KNOWN:
            raise BadRule(f"{name} is not a part of a recurrence rule")
        parts[name] = ",".join(item.strip() for item in value.split(",")) if name != "UNTIL" else value
    _check_parts(parts)
    return ";".join(f"{name}={value}" for name, value in parts.items())


def _check_parts(parts: dict[str, str]) -> None:
    frequency = parts.get("FREQ", "").upper()
    if frequency not in FREQUENCIES:
        raise BadRule("FREQ is missing" if not frequency else f"FREQ={frequency} is not a frequency")
    if "UNTIL" in parts and "COUNT" in parts:
        raise BadRule("it has both UNTIL and COUNT")
    for name in ("COUNT", "INTERVAL"):
        if name in parts and not (parts[name].isdigit() and int(parts[name]) >= 1):
            raise BadRule(f"{name}={parts[name]} is not a whole number from 1")
    if "UNTIL" in parts and not _UNTIL.fullmatch(parts["UNTIL"]):
        raise BadRule(f"UNTIL={parts['UNTIL']} is not a date or date-time")
    for name, (low, high, signed) in _RANGES.items():
        for item in parts[name].split(",") if name in parts else ():
            number = int(item) if re.fullmatch(r"[+-]?\d+", item) else None
            if number is None or not (low <= abs(number) <= high) or (number < 0 and not signed):
                raise BadRule(f"{name} value {item!r} is out of range")
        if name in parts and frequency in _NOT_WITH.get(name, ()):
            raise BadRule(f"{name} cannot go with FREQ={frequency}")
    for item in parts["BYDAY"].split(",") if "BYDAY" in parts else ():
        found = _DAY.fullmatch(item.upper())
        if found is None or found["day"] not in WEEKDAYS:
            raise BadRule(f"BYDAY value {item!r} is not a weekday")
        ordinal = found["ordinal"]
        if ordinal is not None and (frequency not in ("MONTHLY", "YEARLY") or not 1 <= abs(int(ordinal)) <= 53):
            raise BadRule(f"BYDAY value {item!r} has an ordinal FREQ={frequency} cannot take")
    if "WKST" in parts and parts["WKST"].upper() not in WEEKDAYS:
        raise BadRule(f"WKST={parts['WKST']} is not a weekday")


@dataclass(frozen=True, slots=True)
class Checked:
    """A component ready to expand, and what was wrong with its rule: `problem` (the rule was dropped)
    or `tidied` (read after tidying its spacing); None when nothing."""

    component: icalendar.Event
    problem: str | None = None
    tidied: str | None = None


def prepared(component: icalendar.Event, zone: tzinfo) -> Checked:
    """The component with its rules checked (a bad one dropped, with the reason) and an all-day
    series' UTC `UNTIL` read as a date in `zone`; the input is left as it was."""
    rules = component.get("RRULE")
    if rules is None:
        return Checked(component)
    kept: list[icalendar.vRecur] = []
    problem = tidied = None
    edited = False
    all_day = not isinstance(moment(component.get("DTSTART")), datetime)
    for rule in rules if isinstance(rules, list) else [rules]:
        written = rule.to_ical().decode() if isinstance(rule, icalendar.vRecur) else str(rule)  # type: ignore[no-untyped-call]
        try:
            text = check(written)
        except BadRule as error:
            problem = f"RRULE {written[:80]!r}: {error}" if written else f"RRULE (nothing readable): {error}"
            edited = True
            continue
        if not isinstance(rule, icalendar.vRecur):  # icalendar could not read it as written
            tidied = f"RRULE {written[:80]!r} read as {text[:80]!r}"
        recur = icalendar.vRecur.from_ical(text)
        if all_day:
            _until_as_local_date(recur, zone)
        edited = edited or recur.to_ical() != written.encode()
        kept.append(recur)
    if not edited:
        return Checked(component)
    changed = component.copy()  # shallow: only its RRULE is replaced, the other properties are shared
    del changed["RRULE"]
    for recur in kept:
        changed.add("RRULE", recur)
    return Checked(changed, problem, tidied)


def _until_as_local_date(recur: icalendar.vRecur, zone: tzinfo) -> None:
    until = (recur.get("UNTIL") or [None])[0]
    if isinstance(until, datetime):
        local = until.astimezone(zone) if until.tzinfo is not None else until
        recur["UNTIL"] = [date(local.year, local.month, local.day)]
