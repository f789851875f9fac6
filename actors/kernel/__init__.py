"""The actor kernel: actor base, channels, supervisor, clock. Imports no trading code."""
