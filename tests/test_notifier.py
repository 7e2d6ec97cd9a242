"""The notifier's listeners, through its public calls: ``listen`` on an event loop, ``wake``
from any thread, ``wait`` with a timeout (the poll of a stream whose wake-up was lost)."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time

from gateway.events.notify import Notifier


def notifier() -> Notifier:
    return Notifier("sqlite://", poll_interval=5.0)


def test_a_wake_from_another_thread_wakes_every_listener_of_the_workspace_and_no_other():
    async def main() -> tuple[list[bool], bool]:
        hub = notifier()
        with (
            hub.listen("w1") as a,
            hub.listen("w1") as b,
            hub.listen(None) as every,
            hub.listen("w2") as other,
        ):
            waits = [asyncio.create_task(x.wait(2.0)) for x in (a, b, every)]
            await asyncio.sleep(0)
            threading.Thread(target=hub.wake, args=(["w1"],)).start()
            woken = await asyncio.gather(*waits)
            return woken, other.is_set()

    woken, other = asyncio.run(main())
    assert woken == [True, True, True]
    assert other is False


def test_a_wait_times_out_without_a_wake_and_a_wake_before_the_wait_is_kept():
    async def main() -> tuple[bool, float, bool, bool]:
        hub = notifier()
        with hub.listen("w") as listener:
            started = time.monotonic()
            timed_out = await listener.wait(0.05)
            took = time.monotonic() - started
            hub.wake(["w"])  # on the loop's own thread: at once
            kept = await listener.wait(5.0)  # already set: no wait
            listener.clear()
            cleared = listener.is_set()
            return timed_out, took, kept, cleared

    timed_out, took, kept, cleared = asyncio.run(main())
    assert timed_out is False and 0.04 <= took < 2.0
    assert kept is True and cleared is False


def test_a_cancelled_wait_leaves_the_listener_usable():
    async def main() -> bool:
        hub = notifier()
        with hub.listen("w") as listener:
            waiting = asyncio.create_task(listener.wait(5.0))
            await asyncio.sleep(0)
            waiting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await waiting
            again = asyncio.create_task(listener.wait(2.0))
            await asyncio.sleep(0)
            hub.wake(["w"])
            return await again

    assert asyncio.run(main()) is True


def test_a_listener_that_left_is_not_woken():
    async def main() -> bool:
        hub = notifier()
        with hub.listen("w") as listener:
            pass
        hub.wake(["w"])
        return listener.is_set()

    assert asyncio.run(main()) is False


def test_every_concurrent_wait_on_one_listener_is_woken_and_one_timing_out_loses_nothing():
    async def main() -> tuple[bool, bool, bool]:
        hub = notifier()
        with hub.listen("w") as listener:
            long = asyncio.create_task(listener.wait(5.0))
            short = asyncio.create_task(listener.wait(0.01))
            timed_out = await short  # the short wait ends first, by its timer
            also = asyncio.create_task(listener.wait(5.0))
            await asyncio.sleep(0)
            hub.wake(["w"])
            # At once, not when the long wait's own timer ends: a wake-up is every waiter's.
            return timed_out, await asyncio.wait_for(long, 1.0), await asyncio.wait_for(also, 1.0)

    timed_out, long, also = asyncio.run(main())
    assert timed_out is False
    assert long is True and also is True
