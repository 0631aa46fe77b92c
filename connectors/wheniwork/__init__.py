"""When I Work: people, shifts and time off, read by polling (the API has no webhooks).

Wiring, in the composition root::

    client = WhenIWorkClient(developer_key, username, password)  # logs in on first use, W-Token after
    reader = WhenIWork(client)                                   # a PeopleReader
    reader.people(cursor)           # DirectoryPages: users, locations and roles as groups
    reader.events(cursor, window)   # PeoplePages: shifts (booking_reason "shift"), time off ("oof")
"""

from connectors.wheniwork.client import DEFAULT_BASE_URL, WhenIWorkClient
from connectors.wheniwork.dates import DateError, parse_datetime
from connectors.wheniwork.reader import APPROVED, WhenIWork

__all__ = ["APPROVED", "DEFAULT_BASE_URL", "DateError", "WhenIWork", "WhenIWorkClient", "parse_datetime"]
