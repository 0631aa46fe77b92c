"""From the bytes of a feed to an `icalendar.Calendar`, or a ConnectorError an admin can act on."""

from __future__ import annotations

import re
import warnings

import icalendar

from connectors.records import ConnectorError

# Apple Calendar writes the local mean time of old VTIMEZONE history as +MMSS instead of +HHMMSS
# (Berlin's +00:53:28 comes out as "+5328"), which icalendar rightly refuses and which would sink
# the whole feed. Only impossible hours (24-59) with a plausible minute-second reading are rewritten.
_APPLE_OFFSET = re.compile(rb"^(TZOFFSET(?:FROM|TO):[+-])(2[4-9]|[3-5][0-9])([0-5][0-9])(\r?)$", re.MULTILINE)
# Exchange has been seen writing `DTSTART;TZID="W. Europe Standard Time:20200609T090000"`: the value
# inside the quoted zone name and nothing after the colon. Only a date-time closing the quote is moved out.
_SWALLOWED_VALUE = re.compile(rb'^([A-Z-]+;(?:[^:"\r\n]*;)?TZID=)"([^":\r\n]+):(\d{8}T\d{6}Z?)"(\r?)$', re.MULTILINE)


def parse(data: bytes, *, where: str) -> tuple[icalendar.Calendar, tuple[str, ...]]:
    """Parse a feed's bytes; `where` names the feed in messages (already redacted).

    Returns the calendar and notes for the admin (repairs made on the way). Raises ConnectorError
    (action_required) for content that is no calendar at all (an HTML sign-in page, an empty answer)
    and for iCalendar that icalendar cannot read, with icalendar's reason (it names the bad line).
    """
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:64]
    if start[:1] == b"<":
        raise ConnectorError(
            f"ICS feed {where}: the address answered a web page (HTML), not a calendar; "
            "a sign-in page? Use the calendar's published (secret) iCal address",
            action_required=True,
        )
    if not start.upper().startswith(b"BEGIN:VCALENDAR"):
        shown = "an empty answer" if not start else "something that does not start with BEGIN:VCALENDAR"
        raise ConnectorError(f"ICS feed {where}: not an iCalendar feed ({shown})", action_required=True)
    notes: list[str] = []
    data, repaired = _APPLE_OFFSET.subn(rb"\g<1>00\g<2>\g<3>\g<4>", data)
    if repaired:
        notes.append(f"repaired {repaired} time-zone offset(s) written as +MMSS (an Apple Calendar bug)")
    data, repaired = _SWALLOWED_VALUE.subn(rb"\g<1>\g<2>:\g<3>\g<4>", data)
    if repaired:
        notes.append(f"repaired {repaired} date-time(s) written inside their quoted TZID (an Exchange bug)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("utf-8", "replace")
        notes.append("the feed is not UTF-8; unreadable characters were replaced")
    try:
        with warnings.catch_warnings():
            # icalendar warns about guessed time zones and the like; what matters reaches the notes.
            warnings.simplefilter("ignore")
            calendar = icalendar.Calendar.from_ical(text)
    except Exception as error:  # icalendar raises ValueError mostly, but not only, on bad input
        reason = " ".join(str(error).split())[:300] or type(error).__name__
        raise ConnectorError(f"ICS feed {where}: not valid iCalendar: {reason}", action_required=True) from None
    if not isinstance(calendar, icalendar.Calendar):
        raise ConnectorError(f"ICS feed {where}: not an iCalendar feed (no VCALENDAR)", action_required=True)
    return calendar, tuple(notes)
