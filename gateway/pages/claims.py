"""Claims of a creator's sites: start one, the exact proof to publish, verify, the button."""

from urllib.parse import quote

from aiohttp import web

from core import claims
from core.errors import DomainError
from core.thing_keys import parse_thing_key
from gateway import keys
from gateway.handlers.claims import claim_json, verify_claim
from gateway.pages.visits import Visit, page, render, see_other

DONE = {"verified": "The claim is verified: flattrs of its pages are yours now.",
        "started": "The claim is started: publish one of the proofs below, then verify it."}


def button_snippet(public_url: str, page_url: str) -> str:
    """The HTML a creator pastes into a page: the count badge, linked to the Flattr page."""
    quoted = quote(page_url, safe="")
    return (f'<a href="{public_url}/flattr?url={quoted}">'
            f'<img src="{public_url}/badge.svg?url={quoted}" alt="Flattr this" '
            f'width="110" height="20"></a>')


async def claims_page(visit: Visit, *, error: str | None = None, status: int = 200
                      ) -> web.StreamResponse:
    member = visit.signed_in()
    async with visit.app[keys.engine_key].connect() as conn:
        found = await claims.claims_of(conn, member.id)
    call = visit.call()
    shown = [claim_json(c, member.handle, call) for c in found]
    public_url = visit.settings.public_url
    page_url = visit.request.query.get("page", "").strip()
    snippet = None
    if page_url:
        try:
            snippet = button_snippet(public_url, parse_thing_key(page_url).key)
        except DomainError as refused:  # shown beside the form
            error = error or str(refused)
    return render(visit, "claims.html", {
        "title": "Your claims", "error": error, "claims": shown,
        "done": DONE.get(visit.request.query.get("done", "")),
        "page_url": page_url, "snippet": snippet,
        "meta_tag": f'<meta name="flattr:account" content="{member.handle}">',
        "example_snippet": button_snippet(public_url, "https://your.site/a-page"),
    }, status=status)


show_claims = page()(claims_page)


@page(on_error=claims_page)
async def start_claim(visit: Visit) -> web.StreamResponse:
    await visit.act(lambda conn, member, posted: claims.create_claim(
        conn, member.id, str(posted.get("host", "")).strip(),
        str(posted.get("path_prefix", "")).strip() or None))
    return see_other("/claims?done=started")


@page(on_error=claims_page)
async def verify(visit: Visit) -> web.StreamResponse:
    """The API's verification itself: the proof fetched with no connection held."""
    visit.signed_in()
    await visit.form()
    await verify_claim(visit.call())
    return see_other("/claims?done=verified")


def add_routes(app: web.Application) -> None:
    app.router.add_get("/claims", show_claims)
    app.router.add_post("/claims", start_claim)
    app.router.add_post("/claims/{id}/verify", verify)
