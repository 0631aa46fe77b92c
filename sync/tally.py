"""What a sync did: counts by action, notes for an admin, and who each action touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

MAX_NOTES = 50
MAX_PEOPLE = 10_000


@dataclass
class Tally:
    """Counts start at zero for every name in `COUNTS` (so a report shows what did not happen too)."""

    COUNTS: ClassVar[tuple[str, ...]] = ()

    counts: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    # Who each action touched (addresses), for a dry run's plan; capped like the notes.
    people: dict[str, list[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in self.COUNTS:
            self.counts.setdefault(name, 0)

    def count(self, name: str, by: int = 1, *, who: str | None = None) -> None:
        self.counts[name] = self.counts.get(name, 0) + by
        if who is not None:
            names = self.people.setdefault(name, [])
            if len(names) < MAX_PEOPLE:
                names.append(who)

    def note(self, text: str) -> None:
        if len(self.notes) < MAX_NOTES:
            self.notes.append(text)
