"""The whole config: every section, plus checks that span sections."""

from __future__ import annotations

import dataclasses

from config.fields import setting
from config.schema.kernel import ChannelsSection, DaemonSection, LogSection, SupervisorSection, WatchdogSection
from config.schema.market import FeedSection, StrategySection
from config.schema.ops import AdminSection, NotifySection, RetentionSection, SystemdSection
from config.schema.trading import InstrumentSection, OrdersSection, ReconcilerSection, RiskSection, VenueSection


def _default_instruments() -> dict[str, InstrumentSection]:
    return {"XRP/ETH": InstrumentSection(base="XRP", quote="ETH")}


@dataclasses.dataclass(frozen=True)
class AaitiConfig:
    """Everything aaiti.toml can say. Every field has a default; an empty file is valid."""

    daemon: DaemonSection = setting(factory=DaemonSection, doc="Process-wide settings.")
    log: LogSection = setting(factory=LogSection, doc="Logging.")
    supervisor: SupervisorSection = setting(factory=SupervisorSection, doc="Supervision.")
    watchdog: WatchdogSection = setting(factory=WatchdogSection, doc="Watchdog.")
    channels: ChannelsSection = setting(factory=ChannelsSection, doc="Channel capacities.")
    admin: AdminSection = setting(factory=AdminSection, doc="Admin HTTP endpoint.")
    systemd: SystemdSection = setting(factory=SystemdSection, doc="systemd notifications.")
    notify: NotifySection = setting(factory=NotifySection, doc="Notifications through Apprise.")
    feed: FeedSection = setting(factory=FeedSection, doc="Market data.")
    strategies: tuple[StrategySection, ...] = setting(factory=tuple, doc="Strategy instances.")
    instruments: dict[str, InstrumentSection] = setting(
        factory=_default_instruments, doc="Instruments by unified symbol.", restart=True
    )
    risk: RiskSection = setting(factory=RiskSection, doc="Risk limits.")
    venue: VenueSection = setting(factory=VenueSection, doc="Venue.")
    reconciler: ReconcilerSection = setting(factory=ReconcilerSection, doc="Reconciler.")
    orders: OrdersSection = setting(factory=OrdersSection, doc="Protective and algorithmic orders.")
    retention: RetentionSection = setting(factory=RetentionSection, doc="Archiving old rows of the state database.")

    def validate(self) -> list[tuple[str, str]]:
        """Checks that span sections: names unique, symbols known."""
        issues: list[tuple[str, str]] = []
        seen: set[str] = set()
        universe = set(self.feed.symbols)
        for i, strat in enumerate(self.strategies):
            if strat.name in seen:
                issues.append((f"strategies[{i}].name", f"duplicate strategy name {strat.name!r}"))
            seen.add(strat.name)
            if strat.timeframe not in self.feed.timeframes:
                issues.append(
                    (f"strategies[{i}].timeframe",
                     f"timeframe {strat.timeframe!r} is not in feed.timeframes {list(self.feed.timeframes)}")
                )
            for sym in strat.symbols:
                if sym not in universe:
                    issues.append(
                        (f"strategies[{i}].symbols", f"symbol {sym!r} is not in feed.symbols {sorted(universe)}")
                    )
        if self.venue.kind == "paper":
            for sym in self.feed.symbols:
                if sym not in self.instruments:
                    issues.append(("instruments", f"no instrument defined for feed symbol {sym!r}"))
        for sym in self.risk.symbols:
            if sym not in universe:
                issues.append((f"risk.symbols.{sym}", f"symbol {sym!r} is not in feed.symbols"))
        return issues
