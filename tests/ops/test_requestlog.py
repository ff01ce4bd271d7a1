"""Request ids, latency histograms and pool gauges (issue 11 item 6), on the live server."""

from __future__ import annotations

import re

import httpx
from attest_testing.support import Actors, LiveServer

PROBE = "/v1/subjects/00000000-0000-4000-8000-000000000000"


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample of the Prometheus text exposition ``text``."""
    for line in text.splitlines():
        if not line.startswith(name + "{") and not line.startswith(name + " "):
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', line.rsplit(" ", 1)[0]))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"no sample {name} {labels}")


def test_a_valid_request_id_is_returned_on_every_answer(live: LiveServer, actors: Actors) -> None:
    operator = actors.client("subjects:write", "subjects:read")
    with httpx.Client(base_url=live.base_url) as anonymous:
        answers = [
            anonymous.get("/healthz", headers={"X-Request-Id": "abc-1"}),
            anonymous.get("/no/such/path", headers={"X-Request-Id": "abc-2"}),  # 404 problem
            anonymous.get(PROBE, headers={"X-Request-Id": "abc-3"}),  # 401 problem
            operator.get(PROBE, headers={"X-Request-Id": "abc-4"}),  # 404 problem
            operator.post(
                "/v1/subjects", json={"external_ref": "rid"}, headers={"X-Request-Id": "abc-5"}
            ),
            operator.post(
                "/v1/subjects",
                content=b"{",
                headers={"X-Request-Id": "a:b.c_6", "Content-Type": "application/json"},
            ),
        ]
    assert [a.status_code for a in answers] == [200, 404, 401, 404, 201, 400]
    assert [a.headers["x-request-id"] for a in answers] == [
        "abc-1",
        "abc-2",
        "abc-3",
        "abc-4",
        "abc-5",
        "a:b.c_6",
    ]
    assert answers[1].headers["content-type"].startswith("application/problem+json")


def test_an_unacceptable_request_id_is_replaced_by_a_fresh_one(live: LiveServer) -> None:
    seen = set()
    with httpx.Client(base_url=live.base_url) as client:
        for bad in ("x" * 129, "has space", "new\\nline", "semi;colon", "<script>", ""):
            reply = client.get("/healthz", headers={"X-Request-Id": bad})
            rid = reply.headers["x-request-id"]
            assert rid != bad
            assert re.fullmatch(r"[0-9a-f]{32}", rid), rid
            seen.add(rid)
        fresh = {client.get("/healthz").headers["x-request-id"] for _ in range(3)}
    assert len(seen | fresh) == 9  # a new id each time
    assert all(re.fullmatch(r"[0-9a-f]{32}", r) for r in fresh)


def test_metrics_has_latency_histograms_by_route_and_pool_gauges(
    live: LiveServer, actors: Actors
) -> None:
    operator = actors.client("subjects:write", "subjects:read")
    with httpx.Client(base_url=live.base_url) as anonymous:
        before = anonymous.get("/metrics").text
        made = operator.post("/v1/subjects", json={"external_ref": "hist"}).json()
        for _ in range(3):
            assert operator.get(f"/v1/subjects/{made['id']}").status_code == 200
        assert operator.get(PROBE).status_code == 404
        assert anonymous.get("/no/such/path").status_code == 404
        after = anonymous.get("/metrics").text

    name = "attest_http_request_duration_seconds_count"
    routes = set(re.findall(r'route="([^"]*)"', after))
    read_route = next(r for r in routes if re.fullmatch(r"/v1/subjects/\{[^}/]+\}", r))
    assert "/v1/subjects" in routes
    assert "unmatched" in routes  # unknown paths share one series, not one per path
    assert not any("00000000" in r for r in routes)  # templates, never concrete paths

    def count(text: str, **labels: str) -> float:
        try:
            return _sample(text, name, **labels)
        except AssertionError:
            return 0.0

    ok = {"route": read_route, "method": "GET", "status": "2xx"}
    missing = {"route": read_route, "method": "GET", "status": "4xx"}
    assert count(after, **ok) - count(before, **ok) == 3
    assert count(after, **missing) - count(before, **missing) == 1
    created = {"route": "/v1/subjects", "method": "POST", "status": "2xx"}
    assert count(after, **created) - count(before, **created) == 1
    # Buckets suited to 1-100 ms.
    buckets = set(re.findall(r'attest_http_request_duration_seconds_bucket\{le="([^"]+)"', after))
    assert {"0.001", "0.005", "0.01", "0.025", "0.05", "0.1"} <= buckets

    size = _sample(after, "attest_db_pool_max_connections")
    idle = _sample(after, "attest_db_pool_connections", state="idle")
    in_use = _sample(after, "attest_db_pool_connections", state="in_use")
    assert size == live.settings.db_pool_size
    assert 1 <= idle + in_use <= size
    assert "attest_queue_depth" in after  # the gauge other components register queues on
