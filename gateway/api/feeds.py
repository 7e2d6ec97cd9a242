"""One read of the outbox per workspace for all of its subscribers.

When an event commits, every open stream of the workspace is woken at once. Each used to read
the outbox itself: with 200 subscribers, 200 reads raced the request that caused the event for
the pool's connections and the worker threads. Now the streams of a workspace share a
:class:`Feed`: the first stream woken reads the new events once, the others wait for that read
(or find it done) and take their events from memory. The outbox stays the source of truth: the
feed holds only the workspace's most recent events, contiguous, and a stream that needs older
ones (a resume from far back) reads them itself.

When may a stream use the feed? When a read of the outbox began after the wake-up that woke the
stream reached the event loop (``Listener.woken_at``): whatever caused it had committed by then.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import anyio.to_thread

from gateway.api.context import ApiDeps
from gateway.plugin_api.events import Event
from gateway.services import event_feed

BATCH = 500  # events read from the outbox at a time
KEEP = 2000  # recent events a feed holds per workspace


@dataclass
class Feed:
    """The recent events of one workspace: every event with a sequence above ``floor``, up to
    ``high``, in order."""

    floor: int
    high: int
    events: list[Event] = field(default_factory=list)
    read_started: float = -1.0  # time.monotonic() when the latest read of the outbox began
    reading: asyncio.Task[None] | None = None
    streams: int = 0


class Feeds:
    """The feeds of one event loop's streams (one per app), by workspace."""

    def __init__(self, gateway: ApiDeps) -> None:
        self.gateway = gateway
        self._feeds: dict[str, Feed] = {}
        self.reads = 0  # reads of the outbox for new events, in all (for tests and metrics)

    @contextlib.contextmanager
    def open(self, workspace_id: str, latest: int) -> Iterator[None]:
        """A stream of ``workspace_id`` uses the feed while open; ``latest`` is the workspace's
        latest sequence as the stream read it (the feed starts there if it is new)."""
        feed = self._feeds.get(workspace_id)
        if feed is None:
            feed = self._feeds[workspace_id] = Feed(floor=latest, high=latest)
        feed.streams += 1
        try:
            yield
        finally:
            feed.streams -= 1
            if feed.streams == 0 and self._feeds.get(workspace_id) is feed:
                del self._feeds[workspace_id]

    async def after(
        self,
        workspace_id: str,
        last: int,
        types: frozenset[str] | None,
        *,
        fresh_since: float,
        at_least: int = 0,
    ) -> list[Event]:
        """Up to :data:`BATCH` events of the workspace after sequence ``last`` (of ``types``),
        from an outbox read that began at ``fresh_since`` or later and that reached sequence
        ``at_least``; the stream must have the feed :meth:`open`."""
        feed = self._feeds[workspace_id]
        while feed.read_started < fresh_since or feed.high < at_least:
            await self._read(workspace_id, feed)
        if last < feed.floor:  # older than the feed keeps: this stream reads them itself
            return await anyio.to_thread.run_sync(
                event_feed.events_after, self.gateway, workspace_id, last, types, BATCH
            )
        batch = []
        for event in feed.events[_index_after(feed, last) :]:
            if types is None or event.type in types:
                batch.append(event)
                if len(batch) == BATCH:
                    break
        return batch

    async def _read(self, workspace_id: str, feed: Feed) -> None:
        """Wait for the feed's read in progress, or begin one."""
        if feed.reading is None or feed.reading.done():
            feed.read_started = time.monotonic()
            feed.reading = asyncio.create_task(self._read_new(workspace_id, feed))
        # Shielded: a stream that goes away does not cancel the read the others wait for.
        await asyncio.shield(feed.reading)

    async def _read_new(self, workspace_id: str, feed: Feed) -> None:
        self.reads += 1
        while True:
            batch = await anyio.to_thread.run_sync(
                event_feed.events_after, self.gateway, workspace_id, feed.high, None, BATCH
            )
            if batch:
                feed.events.extend(batch)
                feed.high = batch[-1].sequence
            if len(feed.events) > KEEP:
                del feed.events[: len(feed.events) - KEEP]
                feed.floor = feed.events[0].sequence - 1
            if len(batch) < BATCH:
                return


def _index_after(feed: Feed, last: int) -> int:
    """Where the events after ``last`` begin in the feed (sequences are contiguous)."""
    return max(0, last - feed.floor)
