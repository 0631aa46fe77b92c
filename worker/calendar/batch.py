"""A batch of one connection's calendars synced in one job (`jobs.sync_calendars`).

What one calendar's sync (`sync.run`) does, for up to `jobs.BATCH` calendars of one Outlook or
Google connection at a time, with what they share done once:

1. one transaction claims them all (`calendars.claim_many`: the same lease as `claim`, so a
   calendar another sync holds is skipped and two workers never sync one calendar at once) and
   reads the organisation's window and rules and the connection's credentials once;
2. one set of readers (`readers.batch`, the kind's `CalendarBatch`: one Graph sign-in and one keep-alive pool per
   batch, never kept past it) reads the calendars on a few threads, each taking a few calendars
   (Outlook: their first requests in one Graph JSON batch; a request refused or throttled inside
   it is asked again alone, with the usual retries and messages);
3. rounds are applied as they arrive, several calendars in one transaction (their row locks taken
   in one statement, in id order), each calendar's pages followed by its cursor, and every
   calendar of the transaction finished in one statement (`calendars.finish_many`). A calendar
   whose round brought nothing costs no statement of its own. If a grouped transaction fails, each
   of its calendars is applied again alone, so one calendar's failure never loses another's
   progress. A round longer than `STREAM_EVENTS` is applied page by page as it is read, each page
   in its own transaction, as `sync.run` does.

A refusal of the source (ConnectorError) is kept on its calendar and the others go on; an internal
error is kept on its calendar too, and `BatchIncomplete` is raised at the end so the queue retries
(a calendar synced meanwhile is read again incrementally: harmless). ICS feeds and anything that
is not a person's Outlook or Google calendar are synced one by one with `sync.run`.
"""

from __future__ import annotations

import itertools
import logging
import queue
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.kind import CalendarBatch, Capability
from connectors.kinds import REGISTRY
from connectors.records import CalendarPage, ConnectorError, Window
from store.db import transaction
from store.models import Calendar, Connection, ConnectionKind, Organisation
from store.secret_box import UndecryptableSecret
from store.services import calendars, external_events
from sync.calendar import engine, readers
from sync.calendar.rules import OfficeRules
from worker import metrics
from worker.calendar import sync
from worker.runtime import Runtime

logger = logging.getLogger(__name__)

READ_THREADS = 4  # calendars of a batch read at once (HTTP waits overlap; the GIL does the rest)
GROUP_EVENTS = 2_000  # events (and removals) applied in one transaction at most, several calendars' rounds
STREAM_EVENTS = 1_000  # a round longer than this is applied page by page as it is read
MAX_CHUNK = 20  # calendars a read thread takes at once (Graph: one JSON batch of their first requests)


class BatchIncomplete(Exception):
    """Some calendars of the batch met an internal error (kept on each of them); the queue retries."""

    def __init__(self, calendar_ids: Sequence[int]) -> None:
        super().__init__(f"calendars {', '.join(map(str, calendar_ids))} failed with an internal error")
        self.calendar_ids = list(calendar_ids)


@dataclass
class _Round:
    """One calendar's round as read: its pages, or why it could not be read."""

    calendar: calendars.Claimed
    pages: list[CalendarPage] = field(default_factory=list)
    failure: str | None = None
    action_required: bool = False
    crashed: bool = False  # an internal error, not the source's refusal
    streamed: engine.Tally | None = None  # applied already, page by page (a long round)

    @property
    def size(self) -> int:
        return sum(len(page.events) + len(page.removed) for page in self.pages)


@dataclass(frozen=True)
class _Batch:
    runtime: Runtime
    kind: ConnectionKind
    window: tuple[datetime, datetime]
    contexts: dict[int, engine.Context]


def run(
    runtime: Runtime, connection_id: int, calendar_ids: Sequence[int], *, threads: int = READ_THREADS
) -> dict[int, engine.Tally | None]:
    """Sync these calendars of one connection; each one's tally, None where it did not sync (held by
    another sync, gone, of another connection, or refused by its source: see its `last_error`).

    Raises BatchIncomplete after the others are done when a calendar met an internal error.
    """
    results: dict[int, engine.Tally | None] = dict.fromkeys(calendar_ids)
    with transaction(runtime.session_factory) as session:
        connection = session.get(Connection, connection_id)
        if connection is None:
            return results
        kind = connection.kind
        if not REGISTRY.can(kind, Capability.ONE_CALENDAR):
            claimed = calendars.claim_many(session, connection_id, calendar_ids)
            organisation = session.get_one(Organisation, connection.organisation_id)
            try:
                source: readers.Source | None = readers.connection_source(runtime.secret_box, connection, organisation)
            except UndecryptableSecret:
                source = None  # the claims are kept, and failed below with the reason
            window = calendars.window(organisation)
            rules = OfficeRules.from_settings(organisation.office_rules)
            contexts = {
                item.id: engine.Context(
                    item.id,
                    item.organisation_id,
                    item.member_id,
                    kind.value,
                    organisation.calendar_busy_only,
                    rules,
                    engine.absence_zone(organisation),
                )
                for item in claimed
            }
    if REGISTRY.can(kind, Capability.ONE_CALENDAR):
        for calendar_id in calendar_ids:  # a feed is a connection of its own: one calendar
            results[calendar_id] = sync.run(runtime, calendar_id)
        return results
    skipped = sorted(set(calendar_ids) - set(contexts))
    if skipped:
        logger.info("calendars %s are being synced already (or are gone)", skipped)
    if not claimed:
        return results
    batch = _Batch(runtime, kind, window, contexts)
    crashed: list[int] = []
    if source is None:
        metrics.UNDECRYPTABLE.labels("connection_credentials").inc()
        reason = UndecryptableSecret.reason("the connection's credentials")
        _fail(batch, [_Round(item, failure=reason) for item in claimed])
        return results
    try:
        shared = readers.batch(source, runtime.directory, runtime.webhook_client)
    except Exception as error:  # the connection's settings or credentials cannot make a client
        _fail(batch, [_failed(item, error) for item in claimed])
        if not isinstance(error, ConnectorError):
            raise BatchIncomplete([item.id for item in claimed]) from error
        return results
    try:
        rounds = _read_all(batch, shared, claimed, threads)
        for group in _Groups(rounds, len(claimed)):
            results.update(_settle(batch, group, crashed))
    finally:
        shared.close()
    if crashed:
        raise BatchIncomplete(crashed)
    return results


def _read_all(
    batch: _Batch, shared: CalendarBatch, claimed: list[calendars.Claimed], threads: int
) -> queue.SimpleQueue[_Round]:
    """Start reading every calendar on a pool of threads; their rounds arrive on the queue as read."""
    arrived: queue.SimpleQueue[_Round] = queue.SimpleQueue()
    threads = max(1, min(threads, len(claimed)))
    size = min(MAX_CHUNK, -(-len(claimed) // threads))
    pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="calendar-read")
    for start in range(0, len(claimed), size):
        pool.submit(_read_chunk, arrived, batch, shared, claimed[start : start + size])
    pool.shutdown(wait=False)  # the threads end once the queue holds every round
    return arrived


class _Groups:
    """Rounds as they arrive, in groups: whatever has arrived meanwhile, up to GROUP_EVENTS events."""

    def __init__(self, arrived: queue.SimpleQueue[_Round], expected: int) -> None:
        self._arrived = arrived
        self._left = expected

    def __iter__(self) -> _Groups:
        return self

    def __next__(self) -> list[_Round]:
        if self._left <= 0:
            raise StopIteration
        group = [self._arrived.get()]
        self._left -= 1
        size = group[0].size
        while self._left > 0 and size < GROUP_EVENTS:
            try:
                item = self._arrived.get_nowait()
            except queue.Empty:
                break
            group.append(item)
            self._left -= 1
            size += item.size
        return group


def _read_chunk(
    arrived: queue.SimpleQueue[_Round],
    batch: _Batch,
    shared: CalendarBatch,
    items: list[calendars.Claimed],
) -> None:
    """Read a few calendars one after the other (on a pool thread), their first requests sent together
    where the source takes that (Graph's JSON batching). Every calendar's round goes on the queue."""
    firsts: list[dict[str, Any] | None] = [None] * len(items)
    try:
        firsts = shared.first_pages([(item.address, item.cursor) for item in items], Window(*batch.window))
    except Exception:
        logger.warning("the first requests of %d calendars could not be sent together", len(items), exc_info=True)
    for item, first in zip(items, firsts, strict=True):
        arrived.put(_read(batch, shared, item, first))


def _read(batch: _Batch, shared: CalendarBatch, item: calendars.Claimed, first: dict[str, Any] | None = None) -> _Round:
    """Read one calendar's round (`first`: its first answer, fetched already); a long round is applied as
    it is read."""
    round_ = _Round(item)
    try:
        pages = shared.read(item.address, item.cursor, Window(*batch.window), first)
        for page in pages:
            round_.pages.append(page)
            if page.last:
                return round_
            if round_.size > STREAM_EVENTS:
                round_.streamed = _stream(batch, round_, pages)
                return round_
        raise ConnectorError("the calendar's listing ended before its last page; it is read again")
    except ConnectorError as error:
        round_.failure, round_.action_required = error.message, error.action_required
    except Exception as error:
        logger.exception("reading calendar %d failed", item.id)
        round_.failure, round_.crashed = f"internal error: {type(error).__name__}; it is retried", True
    return round_


def _failed(item: calendars.Claimed, error: Exception) -> _Round:
    """The round of a calendar that could not be read because of `error`."""
    if isinstance(error, ConnectorError):
        return _Round(item, failure=error.message, action_required=error.action_required)
    logger.error("calendar %d: %s", item.id, error, exc_info=error)
    return _Round(item, failure=f"internal error: {type(error).__name__}; it is retried", crashed=True)


def _stream(batch: _Batch, round_: _Round, rest: Iterator[CalendarPage]) -> engine.Tally:
    """A long round: the pages read so far, then the rest as read, applied page by page as `sync.run` does."""
    calendar_id = round_.calendar.id
    tally = engine.Tally()
    pages = itertools.chain(round_.pages, rest)
    cursor, listed = sync.apply_round(batch.runtime, calendar_id, pages, tally, batch.contexts[calendar_id])
    sync.complete(batch.runtime, calendar_id, batch.kind, cursor, listed, batch.window, tally)
    return tally


def _settle(batch: _Batch, group: list[_Round], crashed: list[int]) -> dict[int, engine.Tally | None]:
    """Apply a group of rounds and keep how each calendar ended."""
    results: dict[int, engine.Tally | None] = {}
    failed = [round_ for round_ in group if round_.failure is not None]
    for round_ in group:
        if round_.streamed is not None:
            results[round_.calendar.id] = round_.streamed
    readable = [round_ for round_ in group if round_.failure is None and round_.streamed is None]
    if readable:
        results.update(_apply(batch, readable, failed))
    if failed:
        _fail(batch, failed)
        crashed.extend(round_.calendar.id for round_ in failed if round_.crashed)
        for round_ in failed:
            results[round_.calendar.id] = None
    for tally in results.values():
        if tally is not None:
            metrics.record_sync("calendar", batch.kind.value, "succeeded", tally.counts)
    return results


def _apply(batch: _Batch, rounds: list[_Round], failed: list[_Round]) -> dict[int, engine.Tally | None]:
    """Apply these rounds in one transaction; if it fails, each alone (its failure kept in `failed`)."""
    try:
        return _apply_together(batch, rounds)
    except Exception as error:
        if len(rounds) == 1:
            logger.exception("applying calendar %d failed", rounds[0].calendar.id)
            rounds[0].failure, rounds[0].crashed = f"internal error: {type(error).__name__}; it is retried", True
            failed.append(rounds[0])
            return {}
        logger.info("a group of %d calendars failed to apply: applying them one by one", len(rounds))
    results: dict[int, engine.Tally | None] = {}
    for round_ in rounds:
        results.update(_apply(batch, [round_], failed))
    return results


def _apply_together(batch: _Batch, rounds: list[_Round]) -> dict[int, engine.Tally | None]:
    start, end = batch.window
    tallies = {round_.calendar.id: engine.Tally() for round_ in rounds}
    staged: list[tuple[CalendarPage, engine.Tally, engine.Context]] = []
    for round_ in rounds:
        calendar_id = round_.calendar.id
        for page in round_.pages:
            if page.events or page.removed:
                staged.append((page, tallies[calendar_id], batch.contexts[calendar_id]))
            else:  # nothing to stage: only what the reader met on the way
                for text in page.notes:
                    tallies[calendar_id].note(text)
    with transaction(batch.runtime.session_factory) as session:
        ids = sorted(tallies)
        external_events.lock(session, ids)
        engine.apply_pages(session, staged)
        for round_ in rounds:
            if any(page.full for page in round_.pages):
                # A complete listing (a round may turn full part-way, after a 410: what came before
                # is listed again): what it did not list is gone.
                listed = {event.event_id for page in round_.pages if page.full for event in page.events}
                engine.remove_unlisted(session, round_.calendar.id, listed, start, end, tallies[round_.calendar.id])
        external_events.forget_outside_many(session, ids, start, end)
        calendars.finish_many(
            session,
            [
                calendars.Finished(
                    round_.calendar.id,
                    round_.pages[-1].cursor,
                    tallies[round_.calendar.id].counts,
                    tallies[round_.calendar.id].notes,
                )
                for round_ in rounds
            ],
            window_start=start.date(),
        )
    return dict(tallies.items())


def _fail(batch: _Batch, failed: list[_Round]) -> None:
    """Keep why each of these calendars did not sync (one transaction)."""
    with transaction(batch.runtime.session_factory) as session:
        for round_ in failed:
            logger.warning("sync of calendar %d failed: %s", round_.calendar.id, round_.failure)
            outcome = "action_required" if round_.action_required else "error"
            metrics.record_sync("calendar", batch.kind.value, outcome)
            calendar = session.get(Calendar, round_.calendar.id)
            if calendar is not None:  # gone meanwhile (its person left): nothing to report on
                calendars.fail(session, calendar, round_.failure or "", action_required=round_.action_required)
