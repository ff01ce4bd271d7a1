"""The transparency log over HTTP: checkpoint, C2SP tiles, proofs, attestation receipts."""

from __future__ import annotations

from typing import Annotated, Any

from litestar import Request, Response
from litestar.di import NamedDependency
from litestar.params import FromPath, QueryParameter

from attest.errors import NotFound
from attest.http.auth import current_client, get, requires
from attest.log import merkle
from attest.log.service import LogService, TileAnswer

__all__ = [
    "consistency_proof",
    "entry_bundle",
    "hash_tile",
    "inclusion_proof",
    "log_checkpoint",
    "receipt",
]

IMMUTABLE = "public, max-age=31536000, immutable"
Index = Annotated[int, QueryParameter(ge=0, le=2**62)]


def _is_decimal(text: str) -> bool:
    """ASCII digits only: str.isdigit() also admits '¹' or '٣', which int() refuses or reads
    (a 500 found by schemathesis on GET /v1/log/tile/¹)."""
    return text.isascii() and text.isdigit()


def _tile_address(path: str, *, with_level: bool) -> tuple[int, int, int | None]:
    """(level, N, width) from ``<L>/<N>[.p/<W>]`` (C2SP tlog-tiles), or a 404 problem."""
    parts = path.strip("/").split("/")
    level = 0
    if with_level:
        head = parts.pop(0) if parts else ""
        if not _is_decimal(head) or head != str(int(head)) or int(head) > 8:
            raise NotFound("Not a tile path: tile/<L>/<N>[.p/<W>].")
        level = int(head)
    width: int | None = None
    if len(parts) >= 2 and parts[-2].endswith(".p"):
        raw = parts.pop()
        if not _is_decimal(raw) or raw != str(int(raw)) or not 0 < int(raw) < merkle.TILE_WIDTH:
            raise NotFound("A partial tile's width is 1 to 255.")
        width = int(raw)
        parts[-1] = parts[-1][:-2]
    index = merkle.parse_tile_index(parts)
    if index is None:
        raise NotFound("Not a tile index: groups of three digits, x-prefixed but the last.")
    return level, index, width


def _tile_response(answer: TileAnswer, *, public: bool) -> Response[bytes]:
    if not public:
        cache = "private, no-store"
    else:
        # A tile of a given width never changes; full tiles are the ones clients share.
        cache = IMMUTABLE if answer.full else "public, max-age=60"
    return Response(
        answer.body, media_type="application/octet-stream", headers={"Cache-Control": cache}
    )


@get("/v1/log/checkpoint", media_type="text/plain")
async def log_checkpoint(log_service: NamedDependency[LogService]) -> Response[str]:
    """The latest signed checkpoint (C2SP tlog-checkpoint in a signed note)."""
    checkpoint = await log_service.checkpoint()
    return Response(
        checkpoint.note,
        media_type="text/plain",
        headers={"Cache-Control": "public, max-age=1"},
    )


@get("/v1/log/tile/entries/{path:path}", guards=[requires("audit:read")])
async def entry_bundle(
    request: Request[Any, Any, Any], path: FromPath[str], log_service: NamedDependency[LogService]
) -> Response[bytes]:
    """A C2SP entry bundle: the leaf bytes of 256 (or W) events (admin auditors)."""
    _, index, width = _tile_address(path, with_level=False)
    answer = await log_service.entries(current_client(request), index, width)
    return _tile_response(answer, public=False)


@get("/v1/log/tile/{path:path}")
async def hash_tile(
    path: FromPath[str], log_service: NamedDependency[LogService]
) -> Response[bytes]:
    """A C2SP hash tile of height 8, as of the latest checkpoint."""
    level, index, width = _tile_address(path, with_level=True)
    return _tile_response(await log_service.tile(level, index, width), public=True)


@get("/v1/log/proofs/inclusion")
async def inclusion_proof(
    log_service: NamedDependency[LogService], index: Index, tree_size: Index
) -> dict[str, Any]:
    """RFC 9162 inclusion proof (audit path) of leaf ``index`` in the tree of ``tree_size``."""
    return await log_service.inclusion(index, tree_size)


@get("/v1/log/proofs/consistency")
async def consistency_proof(
    log_service: NamedDependency[LogService], first: Index, second: Index
) -> dict[str, Any]:
    """RFC 9162 consistency proof between tree sizes ``first`` and ``second``."""
    return await log_service.consistency(first, second)


@get("/v1/audit/attestations/{jti:str}/receipt", guards=[requires("audit:read")])
async def receipt(
    request: Request[Any, Any, Any], jti: FromPath[str], log_service: NamedDependency[LogService]
) -> dict[str, Any]:
    """Everything needed to check one attestation offline (``attest audit verify-receipt``)."""
    found = await log_service.receipt(current_client(request), jti)
    return found.body
