"""Prometheus metrics, one registry per application instance.

Under `attest serve` with several workers, ``PROMETHEUS_MULTIPROC_DIR`` is set (by the
``serve`` parent, before any worker imports prometheus_client): every worker writes its
values there and ``/metrics``, whichever worker answers it, reports the sum over all live
workers (prometheus_client's multiprocess mode). Without it (tests, one process) the values
live in this instance's registry.
"""

from __future__ import annotations

import os
import time
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["LATENCY_BUCKETS", "MULTIPROC_ENV", "Metrics"]

#: The variable prometheus_client's multiprocess mode reads (set by `attest serve`).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
#: Request latency buckets (seconds): fine between 1 and 100 ms, where answers should be.
LATENCY_BUCKETS = (
    0.001,
    0.0025,
    0.005,
    0.0075,
    0.01,
    0.015,
    0.02,
    0.025,
    0.035,
    0.05,
    0.075,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    10.0,
)
#: Pool gauges are refreshed at most this often from the request path (seconds).
_POOL_REFRESH = 1.0


class _Pool(Protocol):
    def get_size(self) -> int: ...
    def get_idle_size(self) -> int: ...
    def get_max_size(self) -> int: ...


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.tokens_issued = Counter(
            "attest_tokens_issued",
            "Eligibility tokens issued.",
            ["audience"],
            registry=self.registry,
        )
        self.tokens_denied = Counter(
            "attest_tokens_denied",
            "Token requests denied as not eligible.",
            ["audience"],
            registry=self.registry,
        )

        self.sharing_suspected = Counter(
            "attest_sharing_suspected",
            "Sharing signals: a holder-key limit reached, or several clients for one subject.",
            ["audience", "signal"],
            registry=self.registry,
        )
        self.auth_failures = Counter(
            "attest_auth_failures",
            "Requests refused for their credentials (malformed, invalid, throttled).",
            ["reason"],
            registry=self.registry,
        )
        self.scope_refusals = Counter(
            "attest_scope_refusals",
            "Authenticated requests refused for a missing scope.",
            ["scope"],
            registry=self.registry,
        )
        self.rate_limited = Counter(
            "attest_rate_limited",
            "Requests answered 429 because a client went over its request rate.",
            registry=self.registry,
        )

        self.request_duration = Histogram(
            "attest_http_request_duration_seconds",
            "Time from a request's arrival to the end of its answer, by route template, "
            "method and status class.",
            ["route", "method", "status"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.db_pool_max = Gauge(
            "attest_db_pool_max_connections",
            "Most connections the database pool may open (summed over workers).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.db_pool_connections = Gauge(
            "attest_db_pool_connections",
            "Open database pool connections, idle or in use (summed over workers).",
            ["state"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        #: Depth of an in-process queue (for example the issuance group-commit batcher's):
        #: ``metrics.queue_depth.labels(queue="name").set(n)``, or ``watch_queue``.
        self.queue_depth = Gauge(
            "attest_queue_depth",
            "Items waiting in an in-process queue (summed over workers).",
            ["queue"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        # Group commit of token issuance (attest/tokens/batcher.py) and the caches that
        # cross-instance invalidation keeps fresh (attest/db/notify.py).
        self.issue_batch_size = Histogram(
            "attest_issue_batch_size",
            "Token requests recorded per group-commit transaction.",
            buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256),
            registry=self.registry,
        )
        self.issue_queue_depth = Gauge(
            "attest_issue_queue_depth",
            "Token requests waiting for a group-commit batch, when the last batch started.",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.cache_listener_connected = Gauge(
            "attest_cache_listener_connected",
            "1 while this instance hears cache invalidations (its LISTEN connection is up).",
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self.cache_lookups = Gauge(
            "attest_cache_lookups",
            "Cache lookups since start, by cache and result (hit, miss).",
            ["cache", "result"],
            registry=self.registry,
            multiprocess_mode="livesum",
        )
        self._observers: dict[tuple[str, str, str], Any] = {}
        self._pools: list[_Pool] = []
        self._queues: dict[str, Any] = {}
        self._refreshed = 0.0

    def observe_request(self, route: str, method: str, status: int, seconds: float) -> None:
        """Record one answered request (called by the request-log middleware)."""
        key = (route, method, f"{status // 100}xx")
        child = self._observers.get(key)
        if child is None:
            child = self._observers[key] = self.request_duration.labels(*key)
        child.observe(seconds)
        now = time.monotonic()
        if now - self._refreshed >= _POOL_REFRESH:
            self.refresh()

    def watch_pool(self, pool: _Pool) -> None:
        """Report ``pool``'s size and idle/in-use connections in the pool gauges."""
        self._pools.append(pool)
        self.refresh()

    def watch_queue(self, name: str, depth: Any) -> None:
        """Report ``depth()`` (a callable returning the queue's length) as
        ``attest_queue_depth{queue=name}`` at every scrape (and once a second under load)."""
        self._queues[name] = depth
        self.refresh()

    def refresh(self) -> None:
        """Read the watched pools and queues into their gauges now."""
        self._refreshed = time.monotonic()
        if self._pools:
            size = sum(p.get_size() for p in self._pools)
            idle = sum(p.get_idle_size() for p in self._pools)
            self.db_pool_max.set(sum(p.get_max_size() for p in self._pools))
            self.db_pool_connections.labels(state="idle").set(idle)
            self.db_pool_connections.labels(state="in_use").set(size - idle)
        for name, depth in self._queues.items():
            self.queue_depth.labels(queue=name).set(depth())

    def close(self) -> None:
        """This process stops: its live gauges leave the multiprocess sums."""
        self._pools.clear()
        self._queues.clear()
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess  # noqa: PLC0415

            multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]

    def render(self) -> bytes:
        self.refresh()
        if os.environ.get(MULTIPROC_ENV):
            from prometheus_client import multiprocess  # noqa: PLC0415

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            merged: bytes = generate_latest(registry)
            return merged
        body: bytes = generate_latest(self.registry)
        return body
