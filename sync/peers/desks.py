"""Kadence desks into deskbridge desks, for organisations that chose to import them (`import_desks`).

Desks are matched by (building, label), the pair deskbridge keeps unique: a desk already there is
left as it is (an admin may have renamed its floor), a new one is added. Desks are never deleted
here: bookings and history hang on them, and an admin retires a desk on purpose.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from connectors.records import PeerDesk
from store.db import transaction
from store.models import Connection, Desk
from store.services import desks as desk_store


def import_desks(factory: sessionmaker[Session], connection_id: int, found: Iterable[PeerDesk]) -> int:
    """Add the desks the platform knows and deskbridge does not; returns how many were added."""
    with transaction(factory) as session:
        organisation_id = session.get_one(Connection, connection_id).organisation_id
        have = {
            (building, label.lower())
            for building, label in session.execute(
                select(Desk.building, Desk.label).where(Desk.organisation_id == organisation_id)
            )
        }
        added = 0
        for desk in found:
            key = (desk.building.strip(), desk.label.strip().lower())
            if not desk.label.strip() or key in have:
                continue
            desk_store.create(session, organisation_id, desk.label, building=desk.building, floor=desk.floor)
            have.add(key)
            added += 1
    return added
