"""The web pages and the embeddable Flattr button, served by the gateway.

Server-rendered Jinja2 templates (autoescaped), no scripts; each page calls the same core
services as the JSON API. `setup_pages` registers everything on the application.
"""

from pathlib import Path
from urllib.parse import quote

import aiohttp_jinja2
import jinja2
from aiohttp import web

from core.money import format_money, parse_amount
from gateway import keys
from gateway.pages import account, button, chats, claims, dashboard, funds, statements
from gateway.pages.settings import PagesSettings
from gateway.pages.visits import pages_settings_key

GATEWAY = Path(__file__).resolve().parent.parent
STATIC = GATEWAY / "static"
TEMPLATES = GATEWAY / "templates"


def setup_pages(app: web.Application, settings: PagesSettings | None = None) -> None:
    app[pages_settings_key] = settings or PagesSettings()
    environment = aiohttp_jinja2.setup(
        app, loader=jinja2.FileSystemLoader(TEMPLATES), autoescape=True,
        undefined=jinja2.StrictUndefined,
    )
    environment.filters["cash"] = _cash(app)
    environment.filters["urlencode_all"] = lambda value: quote(str(value), safe="")
    app.router.add_static("/static/", STATIC, append_version=False)
    for module in (account, dashboard, funds, claims, chats, statements, button):
        module.add_routes(app)


def _cash(app: web.Application):
    def cash(value: int | str | None) -> str:
        """An amount (micros, or a decimal string as the API writes it) as members read it."""
        if value is None or value == "":
            return ""
        micros = value if isinstance(value, int) else parse_amount(value)
        return format_money(micros, app[keys.settings_key].currency)

    return cash
