"""The reviewer queue: evidence awaiting a second reviewer, approve or reject with a reason.

The queue and both actions are the evidence service's (the same four-eyes rule, the same
audit events as ``POST /v1/evidence/{id}/approvals`` and ``/rejections``); the page needs
the scope those routes need, ``evidence:review``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath, FromQuery
from litestar.response import Redirect, Template

from attest.console.web import BASE, page_scope, principal, render
from attest.errors import UnprocessableInput
from attest.evidence.models import Evidence
from attest.evidence.service import EvidenceService

__all__ = ["HANDLERS", "MRZ_CHECKS", "free_text"]

REVIEW = "evidence:review"
#: Longest comment or reason, as the API accepts (attest.evidence.routes.FreeText).
MAX_TEXT = 500
#: What a machine-readable zone passed when its evidence awaits approval: a failed check
#: rejects document_mrz evidence at submission (attest.evidence.documents), so pending MRZ
#: evidence passed every one of these (ICAO Doc 9303).
MRZ_CHECKS = (
    "format and character set (TD1, TD2 or TD3)",
    "document code",
    "issuing state code",
    "nationality code names a state",
    "name field",
    "check digit: document number",
    "check digit: date of birth",
    "check digit: expiry date",
    "check digit: optional data",
    "composite check digit",
    "dates valid and consistent",
    "document not expired",
)
_DONE = {"approved": "Evidence approved.", "rejected": "Evidence rejected."}


def free_text(form: Any, field: str, *, required: bool) -> str | None:
    """A free-text form field: trimmed, at most MAX_TEXT characters; None when empty."""
    raw = form.get(field)
    text = raw.strip() if isinstance(raw, str) else ""
    if not text:
        if required:
            raise UnprocessableInput(f"The {field} is required.")
        return None
    if len(text) > MAX_TEXT:
        raise UnprocessableInput(f"The {field} is longer than {MAX_TEXT} characters.")
    return text


def _item(evidence: Evidence) -> dict[str, Any]:
    """What a reviewer sees of pending evidence: never a document number (the service
    keeps only its keyed hash, which is not read here either)."""
    attributes = {
        name: ", ".join(str(v) for v in value) if isinstance(value, list) else str(value)
        for name, value in sorted(evidence.attributes.items())
    }
    return {
        "id": str(evidence.id),
        "subject_id": str(evidence.subject_id),
        "type": evidence.type,
        "document_type": evidence.document_type,
        "attributes": attributes,
        "assurance": evidence.assurance,
        "submitted_by": str(evidence.submitted_by),
        "created_at": evidence.created_at,
        "mrz_checks": MRZ_CHECKS if evidence.type == "document_mrz" else (),
    }


@get("/reviews", guards=[page_scope(REVIEW)], name="console-reviews")
async def queue(
    request: Request[Any, Any, Any],
    evidence_service: NamedDependency[EvidenceService],
    done: FromQuery[str | None] = None,
) -> Template:
    pending = await evidence_service.reviewable(principal(request))
    return render(
        request,
        "reviews.html",
        nav="reviews",
        items=[_item(e) for e in pending],
        notice=_DONE.get(done or ""),
        max_text=MAX_TEXT,
    )


@post("/reviews/{evidence_id:str}/approve", guards=[page_scope(REVIEW)], status_code=303)
async def approve(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    evidence_service: NamedDependency[EvidenceService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    form = await request.form()
    comment = free_text(form, "comment", required=False)
    await evidence_service.approve(principal(request), evidence_id, comment=comment, now=now)
    return Redirect(f"{BASE}/reviews?done=approved", status_code=303)


@post("/reviews/{evidence_id:str}/reject", guards=[page_scope(REVIEW)], status_code=303)
async def reject(
    request: Request[Any, Any, Any],
    evidence_id: FromPath[str],
    evidence_service: NamedDependency[EvidenceService],
    now: NamedDependency[datetime],
) -> Response[Any]:
    form = await request.form()
    reason = free_text(form, "reason", required=True)
    await evidence_service.reject(principal(request), evidence_id, reason=reason, now=now)
    return Redirect(f"{BASE}/reviews?done=rejected", status_code=303)


HANDLERS = [queue, approve, reject]
