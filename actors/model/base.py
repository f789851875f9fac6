"""Base class of every message and the registry of stable message names."""

from __future__ import annotations

from typing import Any

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="msg"):
    """Base of all messages: immutable, keyword-only, tagged with a stable name.

    Subclasses set ``tag="area.name"``; that string is the message's identity in
    logs, the admin API and storage, and must never change once released.
    """


def message_name(msg: Message) -> str:
    """Return the stable name (tag) of a message instance."""
    tag = type(msg).__struct_config__.tag
    return str(tag) if tag is not None else type(msg).__name__


def _all_subclasses(cls: type[Any]) -> list[type[Any]]:
    out: list[type[Any]] = []
    for sub in cls.__subclasses__():
        out.append(sub)
        out.extend(_all_subclasses(sub))
    return out


def message_types() -> dict[str, type[Message]]:
    """Map every concrete message's stable name to its class (for decoding and docs)."""
    out: dict[str, type[Message]] = {}
    for cls in _all_subclasses(Message):
        tag = cls.__struct_config__.tag
        if isinstance(tag, str):
            out[tag] = cls
    return out
