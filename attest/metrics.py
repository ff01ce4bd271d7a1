"""Prometheus metrics, one registry per application instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

__all__ = ["Metrics"]


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
        )
        self.cache_listener_connected = Gauge(
            "attest_cache_listener_connected",
            "1 while this instance hears cache invalidations (its LISTEN connection is up).",
            registry=self.registry,
        )
        self.cache_lookups = Gauge(
            "attest_cache_lookups",
            "Cache lookups since start, by cache and result (hit, miss).",
            ["cache", "result"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        body: bytes = generate_latest(self.registry)
        return body
