"""Inbound push notifications from directories: Graph change/lifecycle notifications, Google channels.

A notification is only a hint to read again: it is checked against the channel's secret (in
constant time), acknowledged at once, and turned into one coalesced sync. Nothing in its body is
trusted or applied.
"""

from fastapi import APIRouter

from api.push import google, microsoft

router = APIRouter(prefix="/push", tags=["push"], include_in_schema=False)
router.include_router(microsoft.router)
router.include_router(google.router)
