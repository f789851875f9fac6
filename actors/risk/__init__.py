"""Pre-trade risk: pure checks (``checks``) and the risk gate actor (``risk_gate``)."""

from actors.risk.checks import Approval, Denial, PortfolioSnapshot, Reason
from actors.risk.risk_gate import RiskEventSink, RiskGate, RiskSnapshot, StateStore

__all__ = [
    "Approval",
    "Denial",
    "PortfolioSnapshot",
    "Reason",
    "RiskEventSink",
    "RiskGate",
    "RiskSnapshot",
    "StateStore",
]
