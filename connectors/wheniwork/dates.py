"""When I Work's dates: what it writes (`Fri, 07 Mar 2014 08:30:00 -0600`) and what it reads (`2014-03-05`).

Every datetime the API returns is PHP's `date('r')`: weekday, day, month name, four-digit year,
time and a numeric offset, which is the account's local offset at that instant (-0600 in winter,
-0500 in summer, so one object may carry both). We parse exactly that shape and nothing looser:
`email.utils.parsedate_to_datetime` would also take two-digit years, zone names and a missing
offset (a naive datetime), any of which here means the payload is not what the document says.
A weekday that does not match the date is refused too: it means the text was built wrongly.

Query windows are sent as plain dates (`YYYY-MM-DD`, the document's query examples); the server
reads them in the account's zone, which we do not know, so callers widen the window by the
widest offsets there are and filter the answer to the exact window themselves.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta, timezone

MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_RFC2822 = re.compile(
    r"(?P<weekday>[A-Z][a-z]{2}), (?P<day>\d{1,2}) (?P<month>[A-Z][a-z]{2}) (?P<year>\d{4}) "
    r"(?P<hour>\d{2}):(?P<minute>\d{2}):(?P<second>\d{2}) (?P<sign>[+-])(?P<oh>\d{2})(?P<om>\d{2})"
)
# Local offsets run from -12:00 to +14:00: a plain date read in the account's zone can be this far
# from the same date in UTC, so a window is widened by a day on each side (two at the end, whose date
# the server may read as that day's midnight).
_WIDEN_BEFORE = timedelta(days=1)
_WIDEN_AFTER = timedelta(days=2)


class DateError(ValueError):
    """A datetime that is not in When I Work's format; the message says what is wrong with it."""


def parse_datetime(text: object) -> datetime:
    """`Fri, 07 Mar 2014 08:30:00 -0600` as an aware datetime in UTC; DateError for anything else."""
    if not isinstance(text, str):
        raise DateError(f"expected a date like 'Fri, 07 Mar 2014 08:30:00 -0600', got {text!r}")
    match = _RFC2822.fullmatch(text)
    if match is None:
        raise DateError(f"{text!r} is not a date like 'Fri, 07 Mar 2014 08:30:00 -0600'")
    if match["month"] not in MONTHS or match["weekday"] not in WEEKDAYS:
        raise DateError(f"{text!r} has an unknown month or weekday name")
    offset_minutes = int(match["oh"]) * 60 + int(match["om"])
    if int(match["om"]) >= 60 or offset_minutes > 14 * 60:
        raise DateError(f"{text!r} has an offset no zone uses")
    sign = -1 if match["sign"] == "-" else 1
    zone = timezone(sign * timedelta(minutes=offset_minutes))
    try:
        local = datetime(
            int(match["year"]),
            MONTHS.index(match["month"]) + 1,
            int(match["day"]),
            int(match["hour"]),
            int(match["minute"]),
            int(match["second"]),
            tzinfo=zone,
        )
    except ValueError as error:  # 31 Feb, 25:00 and the like
        raise DateError(f"{text!r} is not a real date ({error})") from None
    if WEEKDAYS[local.weekday()] != match["weekday"]:
        raise DateError(f"{text!r}: {match['weekday']} does not match the date")
    return local.astimezone(UTC)


def local_offset(text: str) -> timedelta:
    """The offset written in a datetime `parse_datetime` accepted (e.g. -6 h for `-0600`)."""
    match = _RFC2822.fullmatch(text)
    if match is None:
        raise DateError(f"{text!r} is not a date like 'Fri, 07 Mar 2014 08:30:00 -0600'")
    sign = -1 if match["sign"] == "-" else 1
    return sign * timedelta(hours=int(match["oh"]), minutes=int(match["om"]))


def fixed_zone(offset: timedelta) -> str | None:
    """The IANA name of a fixed offset (`Etc/GMT+6` for -0600: POSIX signs are reversed), or None.

    When I Work tells us offsets, not its account's zone; `Etc/GMT±N` names exist for whole hours only.
    """
    seconds = int(offset.total_seconds())
    if seconds % 3600:
        return None
    hours = seconds // 3600
    if hours == 0:
        return "Etc/UTC"
    return f"Etc/GMT{-hours:+d}"


def is_local_midnight(text: str) -> bool:
    """Whether a datetime `parse_datetime` accepted is 00:00:00 in its own offset (time off by whole days)."""
    return text.split(" ")[4] == "00:00:00"


def query_window(start: datetime, end: datetime) -> tuple[str, str]:
    """The dates to ask for so the answer covers [start, end) whatever the account's zone."""
    first: date = (start.astimezone(UTC) - _WIDEN_BEFORE).date()
    last: date = (end.astimezone(UTC) + _WIDEN_AFTER).date()
    return first.isoformat(), last.isoformat()
