"""Typed immutable messages exchanged between actors.

Every message is a frozen ``msgspec.Struct`` whose ``tag`` is its stable name, used in
logs, the admin API and storage. ``message_name(msg)`` returns it.
"""

from actors.model.base import Message, message_name, message_types

__all__ = ["Message", "message_name", "message_types"]
