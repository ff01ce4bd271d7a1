"""POST /v1/tokens: decide under the audience's policy; sign and record, or deny and record."""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
from litestar import Request, Response, get, post
from litestar.params import FromPath, JSONBody

from attest.audit import service as audit
from attest.clients.guards import current_client, requires
from attest.db import Conn
from attest.errors import (
    InvalidInput,
    NotEligible,
    NotFound,
    ServiceUnavailable,
    UnknownAudience,
    UnprocessableInput,
)
from attest.evidence import repository as evidence_repo
from attest.evidence.service import facts_from_evidence
from attest.http.bodies import Body, Ref, TenantName
from attest.http.context import AppContext, app_context
from attest.policy import repository as policies
from attest.policy.engine import Decision, evaluate
from attest.subjects.service import resolve_subject
from attest.tokens import repository
from attest.tokens.service import (
    ATTESTATION_TYPE,
    TOKEN_TYPE,
    build_claims,
    holder_thumbprint,
    new_jti,
    pairwise_sub,
    token_sha256,
)

__all__ = ["decide", "issue_token", "read_attestation"]

log = logging.getLogger(__name__)


class TokenRequest(Body):
    audience: Ref
    subject_id: str | None = None
    external_ref: Ref | None = None
    tenant: TenantName | None = None
    holder_jwk: dict[str, Any] | None = None


async def decide(
    conn: Conn, ctx: AppContext, subject: asyncpg.Record, policy_name: str
) -> tuple[Decision, list[uuid.UUID]]:
    """Evaluate the latest version of a policy for a subject (pure evaluation on loaded data)."""
    policy = await policies.latest_policy(conn, policy_name)
    if policy is None:
        raise UnprocessableInput(f"The policy '{policy_name}' does not exist.")
    rows = await evidence_repo.verified_for_subject(conn, subject["id"])
    now = ctx.now()
    decision = evaluate(
        policy["document"],
        facts_from_evidence(rows),
        now=now,
        revoked=subject["revoked_at"] is not None,
    )
    current = [r["id"] for r in rows if r["reverify_at"] > now]
    return decision, current


def _reason_view(decision: Decision) -> list[dict[str, str]]:
    return [{"code": r.code, "message": r.message, "rule": r.path} for r in decision.reasons]


@post("/v1/tokens", guards=[requires("tokens:issue")], status_code=201)
async def issue_token(
    request: Request[Any, Any, Any], data: JSONBody[TokenRequest]
) -> Response[Any]:
    client = current_client(request)
    ctx = app_context(request)
    if (data.subject_id is None) == (data.external_ref is None):
        raise InvalidInput(
            "Name the subject by exactly one of subject_id and external_ref.",
            errors=[
                {"field": "$.subject_id", "message": "exactly one of subject_id, external_ref"}
            ],
        )
    cnf_jkt = holder_thumbprint(data.holder_jwk) if data.holder_jwk is not None else None
    async with ctx.pool.acquire() as conn:
        audience = await policies.get_audience(conn, data.audience)
        if audience is None:
            raise UnknownAudience(
                f"The audience '{data.audience}' is not registered, so it is not restricted."
            )
        if audience["binding_required"] and cnf_jkt is None:
            raise UnprocessableInput(
                "This audience requires holder binding: send holder_jwk.",
                errors=[{"field": "$.holder_jwk", "message": "required by the audience"}],
            )
        subject = await resolve_subject(
            conn,
            client,
            subject_id=data.subject_id,
            external_ref=data.external_ref,
            tenant=data.tenant,
        )
        decision, evidence_ids = await decide(conn, ctx, subject, audience["policy_name"])
        now = ctx.now()
        if not decision.eligible:
            reasons = _reason_view(decision)
            async with conn.transaction():
                await audit.record(
                    conn,
                    "token.denied",
                    occurred_at=now,
                    actor=client.id,
                    tenant=subject["tenant"],
                    subject_id=subject["id"],
                    data={
                        "audience": data.audience,
                        "policy": decision.policy,
                        "policy_version": decision.policy_version,
                        "policy_digest": decision.policy_digest,
                        "reasons": [r["code"] for r in reasons],
                    },
                )
            ctx.metrics.tokens_denied.labels(data.audience).inc()
            raise NotEligible(
                "The subject is not eligible for this audience.",
                reasons=[r["message"] for r in reasons],
                reason_details=reasons,
                policy=decision.policy,
                policy_version=decision.policy_version,
            )

        signer = await ctx.current_signer(conn)
        jti = new_jti()
        sub = pairwise_sub(ctx.pairwise_key, str(subject["id"]), data.audience)
        claims = build_claims(
            issuer=ctx.settings.issuer,
            sub=sub,
            audience=data.audience,
            now=now,
            lifetime=audience["token_lifetime"],
            jti=jti,
            decision=decision,
            cnf_jkt=cnf_jkt,
        )
        token = signer.sign_jwt(claims, TOKEN_TYPE)
        digest = token_sha256(token)
        issued_at = datetime.fromtimestamp(claims["iat"], UTC)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
        attestation = {
            "jti": jti,
            "subject_id": str(subject["id"]),
            "audience": data.audience,
            "sub": sub,
            "policy": {
                "name": decision.policy,
                "version": decision.policy_version,
                "digest": decision.policy_digest,
            },
            "assurance": decision.assurance,
            "evidence_ids": [str(e) for e in evidence_ids],
            "kid": signer.kid,
            "token_sha256": digest,
            "cnf_jkt": cnf_jkt,
            "iat": claims["iat"],
            "exp": claims["exp"],
        }
        signature = signer.sign_jwt(attestation, ATTESTATION_TYPE)
        try:
            async with conn.transaction():
                await repository.insert_attestation(
                    conn,
                    jti=jti,
                    subject_id=subject["id"],
                    tenant=subject["tenant"],
                    audience=data.audience,
                    sub=sub,
                    policy_name=decision.policy,
                    policy_version=decision.policy_version,
                    policy_digest=decision.policy_digest,
                    assurance=decision.assurance,
                    evidence_ids=evidence_ids,
                    kid=signer.kid,
                    token_sha256=digest,
                    cnf_jkt=cnf_jkt,
                    issued_at=issued_at,
                    expires_at=expires_at,
                    requested_by=client.id,
                    signature=signature,
                )
                await audit.record(
                    conn,
                    "token.issued",
                    occurred_at=now,
                    actor=client.id,
                    tenant=subject["tenant"],
                    subject_id=subject["id"],
                    data={
                        "jti": jti,
                        "audience": data.audience,
                        "policy": decision.policy,
                        "policy_version": decision.policy_version,
                        "policy_digest": decision.policy_digest,
                        "assurance": decision.assurance,
                        "kid": signer.kid,
                        "token_sha256": digest,
                        "bound": cnf_jkt is not None,
                    },
                )
        except (asyncpg.PostgresError, OSError) as exc:
            # No record, no token: the token is dropped here and never leaves the service.
            log.warning("token %s not recorded, not returned: %s", jti, type(exc).__name__)
            raise ServiceUnavailable("The token could not be recorded; none was issued.") from exc
    body = {"token": token, "expires_at": expires_at.isoformat().replace("+00:00", "Z"), "jti": jti}
    ctx.metrics.tokens_issued.labels(data.audience).inc()
    return Response(body, status_code=201, headers={"Cache-Control": "no-store"})


@get("/v1/audit/attestations/{jti:str}", guards=[requires("audit:read")])
async def read_attestation(request: Request[Any, Any, Any], jti: FromPath[str]) -> dict[str, Any]:
    client = current_client(request)
    ctx = app_context(request)
    async with ctx.pool.acquire() as conn:
        row = await repository.get_attestation(conn, jti) if len(jti) <= 64 else None
    if row is None or not client.can_see(row["tenant"]):
        raise NotFound("No attestation with this jti.")
    return {
        "jti": row["jti"],
        "audience": row["audience"],
        "subject_id": str(row["subject_id"]),
        "sub": row["sub"],
        "policy": {
            "name": row["policy_name"],
            "version": row["policy_version"],
            "digest": row["policy_digest"],
            "document": row["policy_document"],
        },
        "assurance": row["assurance"],
        "evidence_ids": [str(e) for e in row["evidence_ids"]],
        "kid": row["kid"],
        "alg": row["alg"],
        "public_jwk": {**row["public_jwk"], "kid": row["kid"], "alg": row["alg"]},
        "token_sha256": row["token_sha256"],
        "cnf_jkt": row["cnf_jkt"],
        "issued_at": row["issued_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat(),
        "requested_by": str(row["requested_by"]),
        "signature": row["signature"],
    }
