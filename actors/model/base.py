"""Base class of every message."""

from __future__ import annotations

import msgspec


class Message(msgspec.Struct, frozen=True, kw_only=True, tag_field="msg"):
    """Base of all messages: immutable, keyword-only, tagged with a stable name.

    Subclasses set ``tag="area.name"``; that string is the message's identity in
    logs, the admin API and storage, and must never change once released.
    """
