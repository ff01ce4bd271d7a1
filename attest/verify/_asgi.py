"""Pure ASGI middleware: eligibility tokens (and DPoP proofs) in front of chosen paths.

No framework is imported: the middleware speaks ASGI 3 (HTTP and WebSocket scopes) and so
works with Litestar, Starlette, FastAPI or any other ASGI server or framework.
"""

from __future__ import annotations

import json
import posixpath
import urllib.parse
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

from ._errors import InvalidToken
from ._verifier import Verifier

__all__ = ["CLAIMS_KEY", "AttestMiddleware"]

# ASGI 3 types, loose on purpose: each framework types scopes and messages its own way
# (Litestar with TypedDicts, Starlette with MutableMapping), and both must accept this class.
Scope = Any
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Any]]
Send = Callable[[Any], Awaitable[None]]
ASGIApp = Callable[[Any, Any, Any], Awaitable[None]]

#: Where the validated claims are put: ``scope["state"][CLAIMS_KEY]``.
CLAIMS_KEY = "attest_claims"
_AUTH_SCHEMES = frozenset({"bearer", "dpop"})


def _normalize_path(path: str) -> str:
    # Match on the path as a router would see it after dot-segment removal (RFC 3986 5.2.4),
    # with repeated slashes collapsed, so "/open/../models" cannot slip past "/models".
    normalized = posixpath.normpath("/" + path.lstrip("/"))
    if normalized.startswith("//"):  # POSIX keeps a leading "//"
        normalized = "/" + normalized.lstrip("/")
    return normalized


class AttestMiddleware:
    """Require a valid eligibility token on every request whose path is under ``protect``.

    - ``verifier``: the :class:`~attest.verify.Verifier` (issuer, audience, keys, options).
    - ``protect``: path prefixes, matched on whole segments (``/v1/models`` covers
      ``/v1/models`` and ``/v1/models/x``, not ``/v1/modelsx``) after dot segments and
      repeated slashes are resolved. Default ``("/",)``: everything.
    - ``public_url``: the external origin (``https://gateway.example``) used to rebuild the
      request URL a DPoP proof's ``htu`` must match. Set it in production: without it the
      URL is rebuilt from the ASGI scheme and the client-supplied ``Host`` header.

    The token is read from ``Authorization: Bearer <token>`` (or ``DPoP <token>``, RFC 9449
    7.1) and a bound token's proof from the ``DPoP`` header. On success the claims are put in
    ``scope["state"]["attest_claims"]`` (``request.state.attest_claims`` in Starlette and
    FastAPI, ``request.scope["state"]["attest_claims"]`` in Litestar). On failure the answer
    is ``401`` with ``WWW-Authenticate: Bearer error="invalid_token",
    error_description="<code>"`` and a JSON body ``{"error": "invalid_token", "code": ...}``;
    a request without a token gets no ``error`` (RFC 6750 3.1), only
    ``error_description="missing_token"``. WebSocket handshakes are closed with code 1008 instead.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        verifier: Verifier,
        protect: Iterable[str] = ("/",),
        public_url: str | None = None,
        realm: str = "attest",
    ) -> None:
        self.app = app
        self.verifier = verifier
        prefixes = [protect] if isinstance(protect, str) else list(protect)
        if not prefixes or not all(isinstance(p, str) and p.startswith("/") for p in prefixes):
            raise ValueError("protect must be path prefixes starting with '/'")
        self.protect = tuple(_normalize_path(p) for p in prefixes)
        if public_url is not None:
            parts = urllib.parse.urlsplit(public_url)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("public_url must be an http(s) origin")
            public_url = f"{parts.scheme}://{parts.netloc}"
        self.public_url = public_url
        if '"' in realm or "\\" in realm:
            raise ValueError("realm must not contain quotes or backslashes")
        self.realm = realm

    def protects(self, path: str) -> bool:
        """True when ``path`` falls under one of the protected prefixes."""
        path = _normalize_path(path)
        # "/" covers everything: every normalised path starts with "/".
        return any(path == p or path.startswith(p.rstrip("/") + "/") for p in self.protect)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """ASGI 3 entry point."""
        kind = scope.get("type")
        if kind not in ("http", "websocket") or not self.protects(str(scope.get("path", "/"))):
            await self.app(scope, receive, send)
            return
        code = await self._authenticate(scope)
        if code is None:
            await self.app(scope, receive, send)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008, "reason": code})
        else:
            await self._refuse(send, code)

    async def _authenticate(self, scope: Scope) -> str | None:
        """Verify the request's token; None on success (claims stored), else a reason code."""
        authorization: list[bytes] = []
        dpop: list[bytes] = []
        for name, value in scope.get("headers", ()):
            lowered = name.lower()
            if lowered == b"authorization":
                authorization.append(value)
            elif lowered == b"dpop":
                dpop.append(value)
        if not authorization:
            return "missing_token"
        if len(authorization) > 1:
            return "malformed"
        scheme, _, token = authorization[0].decode("latin-1").strip().partition(" ")
        token = token.strip()
        if scheme.lower() not in _AUTH_SCHEMES or not token or " " in token:
            return "missing_token" if scheme.lower() not in _AUTH_SCHEMES else "malformed"
        # RFC 9449 4.3 step 1: exactly one DPoP header.
        if len(dpop) > 1:
            return "invalid_dpop_proof"
        try:
            if dpop:
                claims = await self.verifier.verify_async(
                    token,
                    dpop=dpop[0].decode("latin-1"),
                    method=str(scope.get("method", "GET")),
                    url=self._request_url(scope),
                )
            else:
                claims = await self.verifier.verify_async(token)
        except InvalidToken as exc:
            return exc.code
        except ValueError:  # the request URL could not be rebuilt (a garbage Host header)
            return "invalid_dpop_proof"
        state = scope.get("state")
        if not isinstance(state, MutableMapping):
            state = scope["state"] = {}
        state[CLAIMS_KEY] = claims
        return None

    def _request_url(self, scope: Scope) -> str:
        raw_path = scope.get("raw_path")
        if isinstance(raw_path, bytes) and raw_path:
            path = raw_path.decode("latin-1")
        else:
            path = urllib.parse.quote(str(scope.get("path", "/")))
        if self.public_url is not None:
            return self.public_url + path
        scheme = "https" if scope.get("scheme") in ("https", "wss") else "http"
        host = next(
            (v.decode("latin-1") for k, v in scope.get("headers", ()) if k.lower() == b"host"),
            None,
        )
        if host is None:
            server = scope.get("server") or ("localhost", None)
            host = server[0] if server[1] is None else f"{server[0]}:{server[1]}"
        return f"{scheme}://{host}{path}"

    async def _refuse(self, send: Send, code: str) -> None:
        if code == "missing_token":  # RFC 6750 3.1: no error code when no token was sent
            challenge = f'Bearer realm="{self.realm}", error_description="{code}"'
        else:  # codes are fixed identifiers, safe inside a quoted-string
            challenge = (
                f'Bearer realm="{self.realm}", error="invalid_token", error_description="{code}"'
            )
        headers = [
            (b"www-authenticate", challenge.encode("ascii")),
            (b"content-type", b"application/json"),
            (b"cache-control", b"no-store"),
        ]
        if code in ("binding_required", "invalid_dpop_proof", "dpop_key_mismatch", "dpop_replay"):
            # RFC 9449 7.1: a DPoP challenge naming the accepted proof algorithms.
            dpop = f'DPoP algs="ES256 EdDSA", error="invalid_token", error_description="{code}"'
            headers.append((b"www-authenticate", dpop.encode("ascii")))
        body = json.dumps({"error": "invalid_token", "code": code}).encode()
        headers.append((b"content-length", str(len(body)).encode("ascii")))
        await send({"type": "http.response.start", "status": 401, "headers": headers})
        await send({"type": "http.response.body", "body": body})
