"""Batching: rollouts measured around the same instant share each built-in query.

Built-in queries select every rollout's series (queries.py), so their text does not depend on the
rollout. `QueryCache` sends each distinct (address, query) once and hands the same answer to
every caller within `max_age` seconds; concurrent callers wait on the one request in flight.
The evaluator aligns measurement times to a grid of the interval (core/analysis_policy.py), so
rollouts with the same interval ask at the same moment: one query per built-in per interval,
whether 10 or 100 rollouts are in analysis. Errors are shared too (not cached past the call).

The Prometheus provider (prometheus_provider.py) holds one cache for instant and one for range
queries per operator process.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass
class _Entry(Generic[T]):
    fetched_at: float
    future: asyncio.Future[T]


class QueryCache(Generic[T]):
    def __init__(self, max_age: float = 1.5, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_age = max_age
        self._clock = clock
        self._entries: dict[tuple[str, ...], _Entry[T]] = {}

    async def get(self, key: tuple[str, ...], fetch: Callable[[], Awaitable[T]]) -> T:
        now = self._clock()
        entry = self._entries.get(key)
        if entry is not None and now - entry.fetched_at <= self.max_age:
            return await asyncio.shield(entry.future)
        self._expire(now)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._entries[key] = _Entry(now, future)
        try:
            result = await fetch()
        except asyncio.CancelledError:
            self._entries.pop(key, None)
            future.cancel()
            raise
        except Exception as e:
            # Waiters see the same error; the next round asks again.
            self._entries.pop(key, None)
            future.set_exception(e)
            future.exception()  # mark retrieved: no "never retrieved" warning without waiters
            raise
        future.set_result(result)
        return result

    def _expire(self, now: float) -> None:
        for key in [k for k, e in self._entries.items() if now - e.fetched_at > self.max_age]:
            del self._entries[key]
