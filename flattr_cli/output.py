"""How the `flattr` command answers: a human table, or one JSON object with --json."""

import json
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from core.errors import DomainError
from core.money import format_amount


def amounts(values: Mapping[str, Any]) -> dict[str, Any]:
    """Replace every `*_micros` integer by a decimal string under the name without it."""
    shown: dict[str, Any] = {}
    for name, value in values.items():
        if name.endswith("_micros") and (value is None or isinstance(value, int)):
            shown[name.removesuffix("_micros")] = None if value is None else format_amount(value)
        elif isinstance(value, list):
            shown[name] = [amounts(v) if isinstance(v, Mapping) else v for v in value]
        elif isinstance(value, Mapping):
            shown[name] = amounts(value)
        else:
            shown[name] = value
    return shown


def emit(result: Mapping[str, Any], *, title: str, rows: Sequence[Mapping] | None = None) -> None:
    """Print the result: JSON when asked, otherwise a table of its fields (and of its rows)."""
    if click.get_current_context().find_root().obj.get("json"):
        click.echo(json.dumps(amounts(result), default=str, sort_keys=False))
        return
    console = Console()
    table = Table(title=title, show_header=False, title_justify="left")
    for name, value in amounts(result).items():
        if not isinstance(value, list):
            table.add_row(name.replace("_", " "), str(value) if value is not None else "—")
    console.print(table)
    if rows:
        shown = [amounts(r) for r in rows]
        detail = Table(show_header=True)
        for column in shown[0]:
            detail.add_column(column.replace("_", " "))
        for row in shown:
            detail.add_row(*(str(v) if v is not None else "—" for v in row.values()))
        console.print(detail)


def fail(error: DomainError) -> None:
    context = click.get_current_context(silent=True)
    as_json = bool(context and context.find_root().obj and context.find_root().obj.get("json"))
    if as_json:
        click.echo(json.dumps({"error": {"code": error.code, "message": error.message}}),
                   err=True)
    else:
        click.echo(f"error ({error.code}): {error.message}", err=True)
    sys.exit(error.exit_code)
