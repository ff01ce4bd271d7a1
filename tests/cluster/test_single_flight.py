"""SingleFlight: requests that find a kept answer due together share one check, unless a
change was notified since that check began or notifications are down."""

from __future__ import annotations

import asyncio

import pytest

from attest.db.changes import SingleFlight


class Check:
    """A check that counts its runs and finishes when released."""

    def __init__(self) -> None:
        self.runs = 0
        self.release = asyncio.Event()

    async def __call__(self) -> int:
        self.runs += 1
        run = self.runs
        await self.release.wait()
        return run


async def test_concurrent_requests_at_the_same_epochs_share_one_check() -> None:
    flight, check = SingleFlight(), Check()
    calls = [asyncio.create_task(flight.run("list-1", (3, 4), check)) for _ in range(20)]
    await asyncio.sleep(0)
    check.release.set()
    assert await asyncio.gather(*calls) == [1] * 20
    assert check.runs == 1
    assert await flight.run("list-1", (3, 4), check) == 2  # the next round checks again


async def test_a_change_notified_meanwhile_or_a_down_feed_means_a_check_of_its_own() -> None:
    flight, check = SingleFlight(), Check()
    first = asyncio.create_task(flight.run("list-1", (3, 4), check))
    await asyncio.sleep(0)
    after_change = asyncio.create_task(flight.run("list-1", (4, 4), check))
    feed_down = asyncio.create_task(flight.run("list-1", None, check))
    other_list = asyncio.create_task(flight.run("list-2", (3, 4), check))
    await asyncio.sleep(0)
    check.release.set()
    results = await asyncio.gather(first, after_change, feed_down, other_list)
    assert check.runs == 4
    assert sorted(results) == [1, 2, 3, 4]


async def test_a_failed_check_fails_its_waiters_and_is_not_kept() -> None:
    flight = SingleFlight()
    gate = asyncio.Event()
    runs = 0

    async def failing() -> int:
        nonlocal runs
        runs += 1
        await gate.wait()
        raise LookupError("database unavailable")

    calls = [asyncio.create_task(flight.run("k", (1,), failing)) for _ in range(5)]
    await asyncio.sleep(0)
    gate.set()
    outcomes = await asyncio.gather(*calls, return_exceptions=True)
    assert all(isinstance(o, LookupError) for o in outcomes)
    assert runs == 1
    with pytest.raises(LookupError):
        await flight.run("k", (1,), failing)
    assert runs == 2


async def test_waiters_check_for_themselves_when_the_checking_request_is_cancelled() -> None:
    flight, check = SingleFlight(), Check()
    leader = asyncio.create_task(flight.run("k", (1,), check))
    await asyncio.sleep(0)
    waiter = asyncio.create_task(flight.run("k", (1,), check))
    await asyncio.sleep(0)
    leader.cancel()
    await asyncio.sleep(0)
    check.release.set()
    assert await waiter == 2
    assert leader.cancelled()
