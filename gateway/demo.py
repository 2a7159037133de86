"""Demo data for the embedded default, so a new user can flattr within a minute."""

from dataclasses import dataclass

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine

from core import claims, funding, members, tokens
from core.clock import utc_now
from core.errors import NotFound
from core.money import MICROS_PER_UNIT
from core.schema import api_tokens
from core.settings import Settings

DEMO_HANDLE = "demo"
DEMO_LABEL = "demo (printed at start)"


@dataclass(frozen=True)
class Demo:
    handle: str
    token: str
    created: bool


async def ensure_demo(engine: AsyncEngine, settings: Settings) -> Demo:
    """Create the demo member once (with funds, a budget and a creator to flattr), then hand
    out a fresh token on every start, revoking the one printed before."""
    async with engine.begin() as conn:
        try:
            demo = await members.member_by_handle(conn, DEMO_HANDLE)
            created = False
        except NotFound:
            demo = await members.create_member(conn, DEMO_HANDLE, password="demo-password")
            await funding.credit(conn, demo.id, 20 * MICROS_PER_UNIT, idempotency_key="demo")
            await members.set_budget(conn, demo.id, max(5 * MICROS_PER_UNIT,
                                                        settings.minimum_budget), settings)
            creator = await members.create_member(conn, "demo-creator")
            claim = await claims.create_claim(conn, creator.id, "example.com")
            await claims.mark_verified(conn, claim.id)
            created = True
        await conn.execute(
            update(api_tokens)
            .where(api_tokens.c.member_id == demo.id, api_tokens.c.label == DEMO_LABEL,
                   api_tokens.c.revoked_at.is_(None))
            .values(revoked_at=utc_now())
        )
        issued = await tokens.issue_token(
            conn, demo.id, frozenset({"read", "flattr", "account"}), label=DEMO_LABEL
        )
    return Demo(DEMO_HANDLE, issued.token, created)
