"""CalDAV calendars (Nextcloud, Fastmail, iCloud, Radicale, SOGo, Zimbra) through the `caldav` library.

account = CalDavAccount(url, username, password, allow_private=False)  # the URL through the outbound guard
CalDavCalendar(account, default_timezone="Europe/Berlin")   # a CalendarReader (every event calendar)
CalDavCalendarWriter(account)                                 # a CalendarWriter (the first event calendar)
"""

from connectors.caldav.account import CalDavAccount
from connectors.caldav.reader import CalDavCalendar
from connectors.caldav.writer import CalDavCalendarWriter

__all__ = ["CalDavAccount", "CalDavCalendar", "CalDavCalendarWriter"]
