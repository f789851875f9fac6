"""Pre-trade risk: pure checks (``checks``) and the risk gate actor (``risk_gate``) with its parts."""

from actors.ports.stores import RiskEventSink, StateStore
from actors.risk.checks import Approval, Denial, Reason
from actors.risk.portfolio import PortfolioSnapshot
from actors.risk.risk_gate import RiskGate
from actors.risk.state import RiskSnapshot, TradingStatus

__all__ = [
    "Approval",
    "Denial",
    "PortfolioSnapshot",
    "Reason",
    "RiskEventSink",
    "RiskGate",
    "RiskSnapshot",
    "StateStore",
    "TradingStatus",
]
