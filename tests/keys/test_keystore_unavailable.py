"""A keystore failure under a request is a 503 problem with Retry-After, never a 500, and
its message (which names paths) stays in the log."""

from __future__ import annotations

import shutil
from typing import Any

import httpx
from attest_testing.service import assert_problem


def test_a_rotation_the_keystore_cannot_store_is_a_503_and_changes_nothing(world: Any) -> None:
    server = world.start()
    with httpx.Client(base_url=server.base_url, timeout=30) as http:
        headers = {"Authorization": f"Bearer {server.admin_key}"}
        before = http.get("/v1/keys", headers=headers).json()["keys"]
        keystore = server.settings.keystore_path
        moved = keystore.with_name(keystore.name + ".away")
        shutil.move(keystore, moved)
        keystore.write_text("not a directory")  # the mount is gone: writes fail
        try:
            response = http.post("/v1/keys/rotate", headers=headers)
        finally:
            keystore.unlink()
            shutil.move(moved, keystore)
        body = assert_problem(response, 503, "unavailable")
        assert response.headers["retry-after"].isdigit()
        assert str(keystore) not in response.text
        assert "incident" not in body
        assert http.get("/v1/keys", headers=headers).json()["keys"] == before
