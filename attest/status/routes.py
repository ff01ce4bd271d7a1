"""GET /v1/status-lists/{id}: the Status List Token (public), as it is or as it was."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from litestar import Request, get
from litestar.params import FromPath, QueryParameter
from litestar.response.base import ASGIResponse

from attest.errors import NotFound
from attest.http.ready import ReadyAnswers, if_none_match, not_modified
from attest.status.service import StatusListService

__all__ = ["LIST_MEDIA_TYPE", "read_status_list"]

#: draft-ietf-oauth-status-list 5.1 / 14.7.
LIST_MEDIA_TYPE = "application/statuslist+jwt"

#: The last second a datetime can hold (9999-12-31T23:59:59Z): a later ``?time`` is a 400,
#: not a 500 from ``datetime.fromtimestamp`` (found by schemathesis).
LATEST_TIME = 253402300799


#: The ready 200 answer per list, remade when its Status List Token is re-signed.
_ANSWERS = ReadyAnswers(LIST_MEDIA_TYPE)


@get("/v1/status-lists/{list_id:str}", media_type=LIST_MEDIA_TYPE)
async def read_status_list(
    request: Request[Any, Any, Any],
    list_id: FromPath[str],
    time: Annotated[int | None, QueryParameter(ge=0, le=LATEST_TIME)] = None,
) -> ASGIResponse:
    """The status list ``list_id``, signed by the active token key; ``?time=<unix seconds>``
    answers the list as it was then (for auditors)."""
    # Served from ready bytes with ready headers: the service and the clock are read off the
    # application state instead of being injected (this is the busiest public read).
    state = request.app.state
    if not list_id.isascii() or not list_id.isdigit() or len(list_id) > 9:
        raise NotFound(f"There is no status list {list_id[:20]!r}.")
    service: StatusListService = state["status_list_service"]
    now: datetime = state["clock"]()
    token = service.ready_token(int(list_id), now) if time is None else None
    if token is None:
        at = datetime.fromtimestamp(time, UTC) if time is not None else None
        token = await service.list_token(int(list_id), now, at)
    if token.etag in if_none_match(request.scope):
        return not_modified(token.headers)
    if time is not None:
        return ASGIResponse(body=token.body, media_type=LIST_MEDIA_TYPE, headers=token.headers)
    return _ANSWERS.answer(list_id, token, token.body, token.headers)
