"""Typed immutable messages exchanged between actors.

Every message is a frozen ``msgspec.Struct`` whose ``tag`` is its stable name, used in
logs, the admin API and storage.
"""

from actors.model.base import Message

__all__ = ["Message"]
