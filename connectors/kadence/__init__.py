"""Kadence (desk booking) as a peer platform: users, everyone's office bookings, desk spaces.

Wiring, in the composition root::

    http = httpx.Client(timeout=30)
    auth = KadenceAuth(client_id, ClientSecret(secret), token_url=EU_TOKEN_URL, http=http)
    reader = Kadence(KadenceClient(auth, api_url=EU_API_URL, http=http))  # a PeopleReader
    reader.people(cursor); reader.events(cursor, window); reader.desks()
    kadence_status(person_event.event)  # "booked", "checkedIn", … as Kadence says
    # reader.events yields KadenceEvents: PersonEvents with status, checked_in_at, checked_out_at
"""

from connectors.kadence.auth import EU_TOKEN_URL, US_TOKEN_URL, ClientSecret, KadenceAuth
from connectors.kadence.client import EU_API_URL, US_API_URL, KadenceClient
from connectors.kadence.reader import Kadence
from connectors.kadence.translate import BOOKING_REASON, CALENDAR_STATUS, OFFICE_TYPES, KadenceEvent, kadence_status

__all__ = [
    "BOOKING_REASON",
    "CALENDAR_STATUS",
    "EU_API_URL",
    "EU_TOKEN_URL",
    "OFFICE_TYPES",
    "US_API_URL",
    "US_TOKEN_URL",
    "ClientSecret",
    "Kadence",
    "KadenceAuth",
    "KadenceClient",
    "KadenceEvent",
    "kadence_status",
]
