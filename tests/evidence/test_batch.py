"""POST /v1/subjects/batch: one answer per item, good items land, a re-sent batch changes
nothing, limits are RFC 9457 problems."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from attest_testing.service import wait_sequenced
from attest_testing.support import US_PASSPORT, Actors, LiveServer

BATCH = "/v1/subjects/batch"
PROBLEM = "application/problem+json"


def _digit(data: str) -> str:
    table = {c: i for i, c in enumerate("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ")} | {"<": 0}
    return str(sum(table[c] * (7, 3, 1)[i % 3] for i, c in enumerate(data)) % 10)


def _td3(number: str) -> str:
    exp = (datetime.now(UTC) + timedelta(days=900)).strftime("%y%m%d")
    line2 = number + _digit(number) + "FRA" + "800101" + _digit("800101") + "M" + exp
    line2 += _digit(exp) + "<" * 14 + "<"
    line2 += _digit(line2[0:10] + line2[13:20] + line2[21:43])
    return "P<FRAMARTIN<<PAUL".ljust(44, "<") + "\n" + line2


def _events(actors: Actors, tenant: str) -> list[dict[str, Any]]:
    """The tenant's subject and evidence events, read by an auditor of that tenant once the
    log has sequenced them all (log_index is set asynchronously, after the commit)."""
    with actors.live.client(actors.key("audit:read", tenant=tenant)) as auditor:
        found = wait_sequenced(auditor)
    return [e for e in found if e["type"].startswith(("subject.", "evidence."))]


@pytest.fixture
def loader(actors: Actors) -> httpx.Client:
    return actors.client("subjects:write", "subjects:read", "evidence:write", name="loader")


def test_each_item_is_answered_and_good_items_land(
    loader: httpx.Client, actors: Actors, admin: httpx.Client, tenant: str
) -> None:
    items: list[Any] = [
        {"external_ref": "a-1"},
        {"external_ref": "a-2", "evidence": [dict(US_PASSPORT, assurance="IAL1")]},
        {"external_ref": 7},
        {
            "external_ref": "a-4",
            "evidence": [dict(US_PASSPORT, attributes={"citizenship": ["us"]})],
        },
        {"external_ref": "a-1"},
        "not an object",
        {"external_ref": "a-7", "evidence": [{"type": "document_mrz", "mrz": _td3("X12345678")}]},
        {"external_ref": "a-8", "unknown": True},
    ]
    response = loader.post(BATCH, json={"items": items})
    assert response.status_code == 200, response.text
    body = response.json()
    assert [i["status"] for i in body["items"]] == [
        "created", "created", "invalid", "invalid", "invalid", "invalid", "created", "invalid",
    ]  # fmt: skip
    assert (body["created"], body["existing"], body["invalid"]) == (3, 0, 5)
    assert [i["index"] for i in body["items"]] == list(range(len(items)))
    errors = {i["index"]: [e["field"] for e in i["errors"]] for i in body["items"]}
    assert errors[2] == ["$.items[2].external_ref"]
    assert errors[3] == ["$.items[3].evidence[0].citizenship[0]"]
    assert errors[4] == ["$.items[4].external_ref"]
    assert errors[5] == ["$.items[5]"]
    assert errors[7] == ["$.items[7]"]
    assert body["items"][1]["evidence"][0]["status"] == "verified"
    assert body["items"][6]["evidence"][0]["status"] == "verified"

    subject = loader.get(f"/v1/subjects/{body['items'][6]['id']}").json()
    assert [a["value"] for a in subject["attributes"]["citizenship"]] == ["FR"]
    types = sorted(e["type"] for e in _events(actors, tenant))
    assert types == ["evidence.verified"] * 2 + ["subject.onboarded"] * 3
    # The MRZ's document number and birth date stay out of the trail.
    assert "X12345678" not in str(_events(actors, tenant))


def test_resending_a_batch_changes_nothing(
    loader: httpx.Client, actors: Actors, admin: httpx.Client, tenant: str
) -> None:
    items = [
        {"external_ref": f"r-{n}", "evidence": [dict(US_PASSPORT, assurance="IAL1")]}
        for n in range(20)
    ]
    first = loader.post(BATCH, json={"items": items}).json()
    before = _events(actors, tenant)
    second = loader.post(BATCH, json={"items": items}).json()
    assert (second["created"], second["existing"]) == (0, 20)
    assert [i["id"] for i in second["items"]] == [i["id"] for i in first["items"]]
    assert all(i["evidence"] == [] for i in second["items"])
    assert all(i["evidence_skipped"] == 1 for i in second["items"])
    assert all(i["evidence_skipped"] == 0 for i in first["items"])
    assert _events(actors, tenant) == before
    one = loader.get(f"/v1/subjects/{first['items'][0]['id']}").json()
    assert len(one["evidence"]) == 1


def test_a_batch_and_the_single_endpoint_agree(loader: httpx.Client) -> None:
    single = loader.post("/v1/subjects", json={"external_ref": "s-1"}).json()
    answer = loader.post(BATCH, json={"items": [{"external_ref": "s-1"}]}).json()
    assert answer["items"][0]["status"] == "existing"
    assert answer["items"][0]["id"] == single["id"]


def test_one_document_for_two_subjects_in_one_batch(loader: httpx.Client) -> None:
    mrz = {"type": "document_mrz", "mrz": _td3("Y" + uuid.uuid4().hex[:8].upper())}
    answer = loader.post(
        BATCH,
        json={
            "items": [
                {"external_ref": "d-1", "evidence": [mrz]},
                {"external_ref": "d-2", "evidence": [mrz]},
            ]
        },
    ).json()
    statuses = [i["evidence"][0]["status"] for i in answer["items"]]
    assert statuses == ["verified", "rejected"]
    assert answer["items"][1]["evidence"][0]["reasons"][0].startswith("document_in_use")


def test_evidence_needs_its_scope(actors: Actors) -> None:
    only_subjects = actors.client("subjects:write")
    answer = only_subjects.post(
        BATCH,
        json={
            "items": [{"external_ref": "e-1", "evidence": [US_PASSPORT]}, {"external_ref": "e-2"}]
        },
    ).json()
    assert [i["status"] for i in answer["items"]] == ["invalid", "created"]
    assert answer["items"][0]["errors"][0]["field"] == "$.items[0].evidence"
    no_scope = actors.client("subjects:read")
    assert no_scope.post(BATCH, json={"items": [{"external_ref": "x"}]}).status_code == 403


def _problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    return body


@pytest.mark.parametrize(
    "body",
    [{}, {"items": []}, {"items": {}}, {"items": [{"external_ref": "x"}], "extra": 1}, []],
)
def test_malformed_batches_are_problems(loader: httpx.Client, body: Any) -> None:
    response = loader.post(BATCH, json=body)
    assert response.status_code in (400, 422)
    _problem(response, response.status_code)


def test_limits(loader: httpx.Client, actors: Actors, admin: httpx.Client, tenant: str) -> None:
    too_many = [{"external_ref": f"m-{n}"} for n in range(1001)]
    problem = _problem(loader.post(BATCH, json={"items": too_many}), 422)
    assert problem["errors"][0]["field"] == "$.items"
    huge = [{"external_ref": "h" * 250 + str(n)} for n in range(17_000)]
    _problem(loader.post(BATCH, json={"items": huge}), 413)
    assert _events(actors, tenant) == []


def test_tenants(loader: httpx.Client, actors: Actors, admin: httpx.Client, tenant: str) -> None:
    _problem(
        loader.post(BATCH, json={"items": [{"external_ref": "x"}], "tenant": "elsewhere"}), 403
    )
    other = f"t-{uuid.uuid4().hex[:12]}"
    answer = admin.post(BATCH, json={"items": [{"external_ref": "x"}], "tenant": other}).json()
    assert answer["created"] == 1
    assert _events(actors, other)[0]["tenant"] == other


def test_new_paths_are_in_the_openapi_document(live: LiveServer) -> None:
    paths = httpx.get(live.base_url + "/schema/openapi.json").json()["paths"]
    for path in (
        BATCH,
        "/v1/evidence/{evidence_id}/rejections",
        "/v1/evidence/{evidence_id}/withdrawals",
    ):
        assert path in paths, sorted(paths)
