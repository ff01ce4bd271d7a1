"""GET /v1/status-lists/{id}: the Status List Token (public), as it is or as it was."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, Response, get
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from attest.errors import NotFound
from attest.status.service import StatusListService

__all__ = ["LIST_MEDIA_TYPE", "read_status_list"]

#: draft-ietf-oauth-status-list 5.1 / 14.7.
LIST_MEDIA_TYPE = "application/statuslist+jwt"

#: The last second a datetime can hold (9999-12-31T23:59:59Z): a later ``?time`` is a 400,
#: not a 500 from ``datetime.fromtimestamp`` (found by schemathesis).
LATEST_TIME = 253402300799


@get("/v1/status-lists/{list_id:str}", media_type=LIST_MEDIA_TYPE)
async def read_status_list(
    request: Request[Any, Any, Any],
    list_id: FromPath[str],
    status_list_service: NamedDependency[StatusListService],
    now: NamedDependency[datetime],
    time: Annotated[int | None, QueryParameter(ge=0, le=LATEST_TIME)] = None,
) -> Response[bytes]:
    """The status list ``list_id``, signed by the active token key; ``?time=<unix seconds>``
    answers the list as it was then (for auditors)."""
    if not list_id.isascii() or not list_id.isdigit() or len(list_id) > 9:
        raise NotFound(f"There is no status list {list_id[:20]!r}.")
    at = datetime.fromtimestamp(time, UTC) if time is not None else None
    token = await status_list_service.list_token(int(list_id), now, at)
    headers = {"Cache-Control": f"public, max-age={token.ttl}", "ETag": token.etag}
    if token.etag in request.headers.get("if-none-match", ""):
        return Response(b"", status_code=304, headers=headers)
    return Response(token.body, media_type=LIST_MEDIA_TYPE, headers=headers)
