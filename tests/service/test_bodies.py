"""Strict request bodies (issue 12 item 7), once in the HTTP layer for every route: JSON media
types only (415), no duplicate members (400), identifiers in NFC without control, bidi or
zero-width characters (422 naming the JSON path)."""

from __future__ import annotations

import json
import unicodedata
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from attest_testing.service import assert_problem
from attest_testing.support import Actors

JSON = {"content-type": "application/json"}


@pytest.mark.parametrize(
    "media_type", ["text/plain", "application/x-www-form-urlencoded", "application/xml", None]
)
def test_a_body_that_is_not_json_is_415(operator: httpx.Client, media_type: str | None) -> None:
    headers = {"content-type": media_type} if media_type else {}
    response = operator.post("/v1/subjects", content=b'{"external_ref": "x"}', headers=headers)
    assert_problem(response, 415, "unsupported-media-type")


@pytest.mark.parametrize(
    "media_type", ["application/json", "application/json; charset=utf-8", "application/merge+json"]
)
def test_json_media_types_are_accepted(operator: httpx.Client, media_type: str) -> None:
    response = operator.post(
        "/v1/subjects", content=b'{"external_ref": "ct-ok"}', headers={"content-type": media_type}
    )
    assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    ("path", "content"),
    [
        ("/v1/subjects", b'{"external_ref": "x", "external_ref": "y"}'),
        ("/v1/clients", b'{"name": "a", "scopes": ["subjects:read"], "name": "b"}'),
        ("/v1/tokens", b'{"audience": "model:fable-5", "subject_id": "a", "subject_id": "b"}'),
    ],
)
def test_duplicate_members_are_400(
    actors: Actors, admin: httpx.Client, operator: httpx.Client, path: str, content: bytes
) -> None:
    caller = admin if path == "/v1/clients" else operator
    body = assert_problem(caller.post(path, content=content, headers=JSON), 400, "duplicate-member")
    assert body["errors"][0]["message"] == "duplicate member"


def test_duplicate_members_nested_are_400(
    operator: httpx.Client, onboard: Callable[..., dict[str, Any]]
) -> None:
    subject = onboard()
    content = (
        b'{"type": "manual_review", "document_type": "us_passport", "assurance": "IAL2",'
        b' "attributes": {"citizenship": ["US"], "us_person_status": "none",'
        b' "us_person_status": "us_citizen"}}'
    )
    response = operator.post(
        f"/v1/subjects/{subject['id']}/evidence", content=content, headers=JSON
    )
    assert_problem(response, 400, "duplicate-member")


def test_nfc_and_nfd_spellings_are_one_subject(operator: httpx.Client) -> None:
    nfc = unicodedata.normalize("NFC", "José-Müller")
    nfd = unicodedata.normalize("NFD", nfc)
    assert nfc != nfd
    first = operator.post("/v1/subjects", json={"external_ref": nfc})
    second = operator.post("/v1/subjects", json={"external_ref": nfd})
    assert first.status_code == 201, first.text
    assert second.status_code == 200, second.text
    assert second.json()["id"] == first.json()["id"]
    assert second.json()["external_ref"] == nfc


@pytest.mark.parametrize(
    "char",
    [
        "\u0085",  # C1: next line
        "\u009b",  # C1: control sequence introducer
        "\u202e",  # right-to-left override
        "\u2066",  # left-to-right isolate
        "\u200b",  # zero-width space
        "\u200d",  # zero-width joiner
        "\ufeff",  # zero-width no-break space
        "\u2028",  # line separator
        "\x1b",  # C0: escape
    ],
)
def test_refused_characters_in_external_ref(operator: httpx.Client, char: str) -> None:
    response = operator.post("/v1/subjects", json={"external_ref": f"hr{char}1"})
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "$.external_ref"


def test_refused_characters_in_batch_items_name_the_path(operator: httpx.Client) -> None:
    items = [{"external_ref": "fine-1"}, {"external_ref": "evil\u202egnp.exe"}]
    response = operator.post(
        "/v1/subjects/batch", content=json.dumps({"items": items}), headers=JSON
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "$.items[1].external_ref"


def test_refused_characters_in_client_names(admin: httpx.Client, tenant: str) -> None:
    response = admin.post(
        "/v1/clients", json={"name": "ops\u200b", "scopes": ["subjects:read"], "tenant": tenant}
    )
    body = assert_problem(response, 422)
    assert body["errors"][0]["field"] == "$.name"
