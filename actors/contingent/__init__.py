"""The contingent-order manager: stops, take-profits, trailing stops, OCO, OTO, brackets,
icebergs and TWAP, native on the venue where it has the type, emulated here otherwise.

``effects`` (what a contingent order asks the actor to do), ``base`` (the protocol every kind
implements and its context), ``triggers`` (trigger prices, crossing, trailing levels),
one module per family of kinds, ``book`` (all contingent orders, dispatch) and
``contingency_manager`` (the actor: I/O, write-ahead, restore, the market tap).
"""
