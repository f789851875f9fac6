"""``aaiti contingent``: the daemon's protective and algorithmic orders over the admin API.

- ``aaiti contingent [--active] [--limit N]``: a table of contingent orders, newest first (id,
  strategy, symbol, kind, mode, status, protected quantity and a summary of the legs such as
  ``take_profit 2.1 @ 0.00051 | stop_loss trailing 0.00047``), prices and sizes at the
  instrument's precision; ``--active`` only the active ones.
- ``aaiti contingent ID``: one order, with a table of its legs.
- ``aaiti contingent cancel ID [--reason TEXT]``: ask the daemon to cancel one (its emulated
  triggers disarm, its venue orders are cancelled).

Connection options, ``--json`` and exit codes are those of the other admin verbs
(``daemon.cli_admin``).
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from daemon import exit_codes
from daemon.cli_admin import AdminClient, CliError, fetch_precision
from daemon.cli_format import NO_PRECISION, Precision, key_values, ms_time, table

__all__ = ["add_contingent_command", "legs_summary", "render_contingent"]

CONTINGENT_COLUMNS = ("id", "strategy", "symbol", "kind", "mode", "status", "protected", "legs")
LEG_COLUMNS = ("name", "type", "side", "status", "size", "filled", "trigger_price", "limit_price", "trailing",
               "client_order_ids")
AddVerb = Callable[..., argparse.ArgumentParser]


def _leg_text(leg: Mapping[str, Any], symbol: str, precision: Precision) -> str:
    """One leg in a few words: ``take_profit 2.1 @ 0.00051``, ``stop_loss trailing 0.00047``."""
    row = {"symbol": symbol}
    parts = [str(leg.get("name", "?"))]
    if leg.get("trailing"):
        parts.append("trailing")
    size = leg.get("size")
    if size is not None and not leg.get("trailing"):
        parts.append(precision.cell("size", size, row))
    trigger, limit = leg.get("trigger_price"), leg.get("limit_price")
    if trigger is not None:
        level = precision.cell("price", trigger, row)
        parts.append(level if leg.get("trailing") else f"@ {level}")
        if limit is not None:
            parts.append(f"-> {precision.cell('price', limit, row)}")
    elif limit is not None:
        parts.append(f"@ {precision.cell('price', limit, row)}")
    return " ".join(parts)


def legs_summary(view: Mapping[str, Any], precision: Precision = NO_PRECISION) -> str:
    """The legs of a contingent order on one line, separated by `` | ``."""
    symbol = str(view.get("symbol", ""))
    return " | ".join(_leg_text(leg, symbol, precision) for leg in view.get("legs") or [])


def render_contingent(view: Mapping[str, Any], precision: Precision = NO_PRECISION) -> str:
    """``GET /contingent/{id}``: the order as a key/value block, then its legs as a table."""
    symbol = view.get("symbol")
    pairs = []
    for key, value in view.items():
        if key == "legs":
            continue
        if key in ("created_ms", "updated_ms"):
            pairs.append((key.removesuffix("_ms"), ms_time(value)))
        else:
            pairs.append((key, precision.cell(key, value, view)))
    legs = [{**leg, "symbol": symbol,
             "client_order_ids": ", ".join(leg.get("client_order_ids") or []) or None}
            for leg in view.get("legs") or []]
    present = [c for c in LEG_COLUMNS if any(leg.get(c) is not None for leg in legs)] or None
    return f"{key_values(pairs)}\n\nlegs:\n{table(legs, present, precision)}"


def _quoted(contingent_id: str) -> str:
    return "/contingent/" + urllib.parse.quote(contingent_id, safe="")


def cmd_contingent(args: argparse.Namespace, client: AdminClient) -> int:
    """List contingent orders, show one (``ID``) or cancel one (``cancel ID``)."""
    words: Sequence[str] = args.words
    if len(words) == 2 and words[0] == "cancel":
        return _cancel(args, client, words[1])
    if len(words) == 1 and words[0] != "cancel":
        view = client.call("GET", _quoted(words[0]))
        if args.json:
            print(json.dumps(view, indent=2))
        else:
            print(render_contingent(view["contingent"], fetch_precision(client)))
        return exit_codes.OK
    if words:
        raise CliError("usage: aaiti contingent [--active] | aaiti contingent ID | aaiti contingent cancel ID",
                       exit_codes.CONFIG_ERROR)
    data = client.call("GET", "/contingent", {"active": "true" if args.active else "false", "limit": args.limit})
    if args.json:
        print(json.dumps(data, indent=2))
        return exit_codes.OK
    precision = fetch_precision(client)
    rows = [{**v, "legs": legs_summary(v, precision)} for v in data["contingent"]]
    print(table(rows, CONTINGENT_COLUMNS, precision))
    return exit_codes.OK


def _cancel(args: argparse.Namespace, client: AdminClient, contingent_id: str) -> int:
    result = client.call("POST", _quoted(contingent_id) + "/cancel",
                         body={"reason": args.reason} if args.reason else {})
    print(json.dumps(result, indent=2) if args.json else f"cancel requested: contingent order {contingent_id}")
    return exit_codes.OK


def add_contingent_command(add: AddVerb) -> None:
    """Register ``aaiti contingent`` with ``add(name, help, handler)`` (``cli_admin``'s verb helper)."""
    p = add("contingent", "list protective and algorithmic orders (stops, brackets, OCO, TWAP, ...), "
            "show one (ID) or cancel one (cancel ID)", cmd_contingent)
    p.add_argument("words", nargs="*", metavar="[cancel] ID",
                   help="ID: show this contingent order; cancel ID: request its cancel")
    p.add_argument("--active", action="store_true", help="only the active ones")
    p.add_argument("--limit", type=int, default=100, help="at most this many (default 100, at most 1000)")
    p.add_argument("--reason", default="", help="with cancel: recorded in the audit log")
