"""Read our store and the paper venue's own database after a run (test helper)."""

from __future__ import annotations

import re
import sqlite3
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from tests.integration.daemon.daemon_process import REPO


def paper_config(tmp: Path, *, speed: float = 600.0, extra: str = "") -> Path:
    """The repository's default aaiti.toml with state in ``tmp`` and absolute data paths."""
    text = (REPO / "aaiti.toml").read_text()
    text = re.sub(r'(?m)^state_dir = .*$', f"state_dir = '{tmp / 'state'}'", text)
    text = re.sub(r'(?m)^path = "data/', f'path = "{REPO}/data/', text)
    text = re.sub(r"(?m)^speed = .*$", f"speed = {speed}", text)
    text = text.replace("[log]\n", f"[admin]\nport = 0\n\n[log]\n{extra}")
    path = tmp / "aaiti.toml"
    path.write_text(text)
    return path


@dataclass(frozen=True)
class AccountState:
    """Orders (id → (status, filled)), fills (trade id → (order, size, price, fee)) and balances."""

    orders: dict[str, tuple[str, Decimal]]
    fills: dict[str, tuple[str, Decimal, Decimal, Decimal]]
    balances: dict[str, Decimal]


def _connect(path: Path) -> sqlite3.Connection:
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)


def ours(state_dir: Path, initial: dict[str, Decimal]) -> AccountState:
    """Our store: orders, fills, and balances derived from the initial ones plus fills."""
    with _connect(state_dir / "aaiti-paper-paper.db") as db:
        orders = {r[0]: (r[1], Decimal(r[2])) for r in db.execute("SELECT client_order_id, status, filled FROM orders")}
        rows = db.execute("SELECT trade_id, client_order_id, side, size, price, fee, fee_currency, symbol FROM fills")
        fills: dict[str, tuple[str, Decimal, Decimal, Decimal]] = {}
        balances = dict(initial)
        for trade_id, coid, side, size, price, fee, fee_ccy, symbol in rows:
            qty, px, fee_d = Decimal(size), Decimal(price), Decimal(fee)
            fills[trade_id] = (coid, qty, px, fee_d)
            base, quote = symbol.split("/")
            sign = 1 if side == "buy" else -1
            balances[base] = balances.get(base, Decimal(0)) + sign * qty
            balances[quote] = balances.get(quote, Decimal(0)) - sign * qty * px
            balances[fee_ccy] = balances.get(fee_ccy, Decimal(0)) - fee_d
    return AccountState(orders, fills, {k: v for k, v in balances.items()})


def venue(state_dir: Path) -> AccountState:
    """The paper venue's own account database."""
    with _connect(state_dir / "paper-venue-paper.db") as db:
        orders = {r[0]: (r[1], Decimal(r[2])) for r in db.execute("SELECT client_order_id, status, filled FROM orders")}
        fills = {
            r[0]: (r[1], Decimal(r[2]), Decimal(r[3]), Decimal(r[4]))
            for r in db.execute("SELECT trade_id, client_order_id, size, price, fee FROM fills")
        }
        balances = {r[0]: Decimal(r[1]) + Decimal(r[2]) for r in db.execute("SELECT asset, free, locked FROM balances")}
    return AccountState(orders, fills, balances)
