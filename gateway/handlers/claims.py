"""Claims of hosts: start one, prove it, list them; admins may mark one verified."""

from core import claims, members
from core.db import READ_ONLY
from core.errors import ClaimNotProven, InsufficientScope, NotFound
from gateway import keys
from gateway.api import Api, Call
from gateway.claim_proof import base_url, find_proof
from gateway.errors import ApiError
from gateway.present import when
from gateway.schemas import ClaimBody

api = Api()


def claim_json(claim: claims.Claim, handle: str, call: Call) -> dict:
    site = base_url(claim.host, call.request.app[keys.gateway_settings_key])
    return {
        "id": claim.id, "host": claim.host, "path_prefix": claim.path_prefix,
        "verified": claim.verified_at is not None, "verified_at": when(claim.verified_at),
        "created_at": when(claim.created_at),
        "how_to_prove": {
            "file": f"{site}/.well-known/flattr.txt",
            "file_content": handle,
            "meta_tag": f'<meta name="flattr:account" content="{handle}">',
            "meta_page": f"{site}{claim.path_prefix}",
        },
    }


@api.route("POST", "/claims", summary="Claim a host (or a path prefix on it)", scope="account",
           body=ClaimBody, status=201, errors=("invalid_host",))
async def create_claim(call: Call):
    member = await members.member_by_id(call.conn, call.member_id)
    made = await claims.create_claim(call.conn, member.id, call.body.host, call.body.path_prefix)
    return {"claim": claim_json(made, member.handle, call)}


@api.route("POST", "/claims/{id}/verify", summary="Fetch the proof and verify the claim",
           scope="account", errors=("not_found", "claim_not_proven", "claim_taken", "busy"),
           own_connections=True)
async def verify_claim(call: Call):
    # The proof is fetched with no database connection held: a slow host must hold neither
    # a pooled connection nor a lock, and only a few fetches run at once.
    engine = call.request.app[keys.engine_key]
    async with engine.connect() as conn:
        await conn.execution_options(**READ_ONLY)
        claim = await claims.claim_by_id(conn, call.path_id())
        member = await members.member_by_id(conn, call.member_id)
    if claim.member_id != member.id:
        raise NotFound(f"you have no claim with id {claim.id}")
    if claim.verified_at is None:
        fetches = call.request.app[keys.claim_verifications_key]
        if fetches.locked():
            raise ApiError("busy", "too many claims are being verified: retry in a few seconds",
                           {"Retry-After": "5"})
        async with fetches:
            proof = await find_proof(
                call.request.app[keys.http_client_key], claim.host, claim.path_prefix,
                member.handle, call.request.app[keys.gateway_settings_key],
            )
        if not proof.found:
            raise ClaimNotProven(f"no proof for {claim.host}: {proof.detail}")
        async with engine.begin() as conn:
            claim = await claims.mark_verified(conn, claim.id)
    return {"claim": claim_json(claim, member.handle, call)}


@api.route("GET", "/claims", summary="The member's claims", scope="read")
async def list_claims(call: Call):
    member = await members.member_by_id(call.conn, call.member_id)
    found = await claims.claims_of(call.conn, member.id)
    return {"claims": [claim_json(c, member.handle, call) for c in found]}


@api.route("POST", "/admin/claims/{id}/verify", summary="Mark a claim verified (admin)",
           scope="admin", errors=("not_found", "claim_taken"))
async def admin_verify(call: Call):
    if call.principal.acting_for:
        raise InsufficientScope("a bot cannot act as an admin")
    claim = await claims.mark_verified(call.conn, call.path_id())
    owner = await members.member_by_id(call.conn, claim.member_id)
    return {"claim": claim_json(claim, owner.handle, call)}
