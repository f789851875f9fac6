"""User-data events as the venue produces them, before the WS-API hub wraps them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

UserEventKind = Literal["execution", "list", "account", "balance"]


@dataclass(frozen=True, slots=True)
class UserEvent:
    """One user-data event payload; ``exec_type`` is the report's ``x`` for executions."""

    kind: UserEventKind
    payload: dict[str, Any]
    exec_type: str = ""
