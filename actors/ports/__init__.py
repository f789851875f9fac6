"""Ports: the Protocols through which actors reach the outside (venues, market data, stores)."""
