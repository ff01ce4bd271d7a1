"""The auditor pages: check a token or a receipt step by step, the log's checkpoints, and
the charts of decisions and key states. Each needs ``audit:read`` and calls the services
as the API's routes do (through :mod:`attest.console.audit_reports`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from litestar import Request, get, post
from litestar.datastructures import UploadFile
from litestar.di import NamedDependency
from litestar.params import QueryParameter
from litestar.response import Template

from attest.audit.service import AuditService
from attest.console import audit_reports
from attest.console.web import page_scope, principal, render
from attest.keys.service import KeyService
from attest.log.service import LogService
from attest.status.service import StatusListService
from attest.tokens.service import TokenService

__all__ = ["HANDLERS"]

AUDIT = page_scope("audit:read")
#: A pasted token longer than this is not read (the verifier caps tokens at 8192).
MAX_TOKEN_FIELD = 16384


def _check_page(
    request: Request[Any, Any, Any],
    *,
    status_code: int = 200,
    report: audit_reports.Report | None = None,
    checked: str | None = None,
    error: str | None = None,
) -> Template:
    return render(
        request,
        "audit/check.html",
        status_code=status_code,
        nav="audit",
        report=report,
        checked=checked,
        error=error,
    )


@get("/audit", guards=[AUDIT], name="console-audit")
async def audit_home(request: Request[Any, Any, Any]) -> Template:
    return _check_page(request)


@post("/audit/token", guards=[AUDIT], status_code=200)
async def check_token(
    request: Request[Any, Any, Any],
    now: NamedDependency[datetime],
    key_service: NamedDependency[KeyService],
    status_list_service: NamedDependency[StatusListService],
    token_service: NamedDependency[TokenService],
    log_service: NamedDependency[LogService],
) -> Template:
    """The token is posted, never put in a URL: it is a credential while it lives."""
    form = await request.form()
    token = form.get("token")
    if not isinstance(token, str) or not token.strip() or len(token) > MAX_TOKEN_FIELD:
        return _check_page(request, status_code=422, error="Paste one token (a compact JWS).")
    report = await audit_reports.check_token(
        token,
        client=principal(request),
        now=now,
        key_service=key_service,
        status_list_service=status_list_service,
        token_service=token_service,
        log_service=log_service,
    )
    return _check_page(request, report=report, checked="token")


@post("/audit/receipt", guards=[AUDIT], status_code=200)
async def check_receipt(
    request: Request[Any, Any, Any],
    key_service: NamedDependency[KeyService],
    log_service: NamedDependency[LogService],
) -> Template:
    form = await request.form()
    upload = form.get("receipt")
    if not isinstance(upload, UploadFile):
        return _check_page(request, status_code=422, error="Choose a receipt file to upload.")
    raw = await upload.read(audit_reports.MAX_RECEIPT_BYTES + 1)
    report = await audit_reports.check_receipt_upload(
        raw, key_service=key_service, log_service=log_service
    )
    return _check_page(request, report=report, checked="receipt")


@get("/audit/checkpoints", guards=[AUDIT], name="console-audit-checkpoints")
async def checkpoints(
    request: Request[Any, Any, Any],
    log_service: NamedDependency[LogService],
    below: Annotated[int | None, QueryParameter(ge=1, le=2**62)] = None,
) -> Template:
    found = await audit_reports.checkpoints(log_service, below=below)
    return render(
        request,
        "audit/checkpoints.html",
        nav="audit",
        checkpoints=found,
        origin=log_service.origin,
        vkey=log_service.key.vkey,
        below=below,
        next_below=found[-1].size if len(found) == 50 else None,
    )


@get("/audit/charts", guards=[AUDIT], name="console-audit-charts")
async def charts(
    request: Request[Any, Any, Any],
    now: NamedDependency[datetime],
    audit_service: NamedDependency[AuditService],
    key_service: NamedDependency[KeyService],
    window: Annotated[str, QueryParameter(max_length=8)] = "24h",
) -> Template:
    report = await audit_reports.charts(
        principal(request),
        window,
        now=now,
        audit_service=audit_service,
        key_service=key_service,
    )
    return render(
        request,
        "audit/charts.html",
        nav="audit",
        report=report,
        windows=list(audit_reports.WINDOWS),
    )


HANDLERS = [audit_home, check_token, check_receipt, checkpoints, charts]
