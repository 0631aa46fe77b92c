"""Desks, rooms and other bookable places."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Select, exists, select
from sqlalchemy.orm import Session

from store import outbox
from store.errors import Conflict, Invalid, NotFound
from store.models import Booking, Desk

KINDS = ("desk", "room", "parking", "locker", "other")
EDITABLE = ("label", "building", "floor", "zone", "kind", "active")


def _describe(desk: Desk) -> dict[str, Any]:
    return {"desk_id": desk.id, "label": desk.label, "building": desk.building, "kind": desk.kind}


def _check(label: str, kind: str) -> None:
    if not label.strip():
        raise Invalid("a desk needs a label", field="label")
    if kind not in KINDS:
        raise Invalid(f"kind must be one of {', '.join(KINDS)}", field="kind")


def _unique_label(session: Session, organisation_id: int, building: str, label: str, desk_id: int = 0) -> None:
    taken = session.scalar(
        select(Desk.id).where(
            Desk.organisation_id == organisation_id,
            Desk.building == building,
            Desk.label == label,
            Desk.id != desk_id,
        )
    )
    if taken is not None:
        where = f" in {building}" if building else ""
        raise Conflict(f"desk {label!r}{where} exists", code="desk_exists", field="label")


def create(
    session: Session,
    organisation_id: int,
    label: str,
    *,
    building: str = "",
    floor: str = "",
    zone: str = "",
    kind: str = "desk",
) -> Desk:
    """Add a bookable place; labels are unique within a building."""
    label, building = label.strip(), building.strip()
    _check(label, kind)
    _unique_label(session, organisation_id, building, label)
    desk = Desk(
        organisation_id=organisation_id,
        label=label,
        building=building,
        floor=floor.strip(),
        zone=zone.strip(),
        kind=kind,
    )
    session.add(desk)
    session.flush()
    outbox.record(session, organisation_id, "desk.created", _describe(desk))
    return desk


def get(session: Session, organisation_id: int, desk_id: int) -> Desk:
    desk = session.get(Desk, desk_id)
    if desk is None or desk.organisation_id != organisation_id:
        raise NotFound(f"no desk {desk_id}")
    return desk


def list_all(session: Session, organisation_id: int) -> list[Desk]:
    return list(
        session.scalars(
            select(Desk).where(Desk.organisation_id == organisation_id).order_by(Desk.building, Desk.label, Desk.id)
        )
    )


def update(session: Session, desk: Desk, **fields: Any) -> Desk:
    """Change label, building, floor, zone, kind or active (None leaves a field); records `desk.updated`."""
    for name in fields:
        if name not in EDITABLE:
            raise Invalid(f"a desk has no editable field {name!r}", field=name)
    fields = {name: value.strip() if isinstance(value, str) else value for name, value in fields.items()}
    changes = {name: value for name, value in fields.items() if value is not None and getattr(desk, name) != value}
    if not changes:
        return desk
    label = changes.get("label", desk.label)
    building = changes.get("building", desk.building)
    _check(label, changes.get("kind", desk.kind))
    if "label" in changes or "building" in changes:
        _unique_label(session, desk.organisation_id, building, label, desk.id)
    for name, value in changes.items():
        setattr(desk, name, value)
    outbox.record(session, desk.organisation_id, "desk.updated", {**_describe(desk), "changes": changes})
    return desk


def delete(session: Session, desk: Desk) -> None:
    """Delete a desk that was never booked; a desk with history can only be deactivated."""
    if session.scalar(select(exists().where(Booking.desk_id == desk.id))):
        raise Conflict("this desk has bookings; deactivate it instead", code="desk_has_bookings")
    outbox.record(session, desk.organisation_id, "desk.deleted", _describe(desk))
    session.delete(desk)


def select_desks(
    organisation_id: int, *, active: bool | None = None, kind: str | None = None, building: str | None = None
) -> Select[Desk]:
    """The desks of an organisation, narrowed by active flag, kind and building, unordered."""
    query = select(Desk).where(Desk.organisation_id == organisation_id)
    if active is not None:
        query = query.where(Desk.active == active)
    if kind is not None:
        query = query.where(Desk.kind == kind)
    if building is not None:
        query = query.where(Desk.building == building.strip())
    return query
