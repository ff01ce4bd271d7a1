"""Prometheus metrics, one registry per application instance."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, generate_latest

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

    def render(self) -> bytes:
        body: bytes = generate_latest(self.registry)
        return body
