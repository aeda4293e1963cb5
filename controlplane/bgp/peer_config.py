"""What the sans-IO BGP core knows about one neighbor: a frozen :class:`PeerConfig`.

The daemon builds one per configured session and hands it to :class:`~controlplane.bgp.session.Peer`;
the core only reads it. Defaults are neutral protocol values (RFC 4271 s.10's suggested hold time,
no hold-time policy, IPv4 and IPv6 unicast). What an operator adds on top, such as the hold times
a provider supports or how long a session stays down after its prefix limit, is a parameter with
a label for the texts it produces: the caller names its own rules, the core names none.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.bgp.constants import SAFI_UNICAST
from controlplane.prefix import AFI_IPV4, AFI_IPV6

__all__ = ["PeerConfig"]


@dataclass(frozen=True, slots=True)
class PeerConfig:
    """Everything the core needs to know about one neighbor (built by the daemon from the config)."""

    name: str
    local_as: int
    peer_as: int
    router_id: str
    connect: str = "passive"  # passive | active | both
    hold_time: int = 90  # what our OPEN offers (RFC 4271 s.10 suggests 90 s)
    hold_range: tuple[int, int] | None = None
    """Negotiated hold times (other than 0) outside ``low..high`` s draw a PeerWarning; the session
    still comes up. ``None``: any hold time RFC 4271 allows is fine."""
    hold_range_label: str = ""
    """How that warning names the range; default ``"the allowed {low}-{high} s"``."""
    connect_retry_time: float = 5.0
    idle_hold_time: float = 1.0  # before an automatic restart after an error
    prefix_limit_restart: float = 60.0
    """After a Cease for too many prefixes (RFC 4486 s.4) the session stays Idle this long."""
    prefix_limit_label: str = ""
    """Appended in parentheses to the reason of that reset, e.g. a rule's number."""
    max_prefixes: dict[int, int] = field(default_factory=dict)  # afi -> limit
    families: tuple[tuple[int, int], ...] = ((AFI_IPV4, SAFI_UNICAST), (AFI_IPV6, SAFI_UNICAST))
    next_hop_ipv4: str = "0.0.0.0"
    next_hop_ipv6: str = "::"
    extended_message: bool = True
    enhanced_route_refresh: bool = True  # offer RFC 7313 (BoRR / EoRR around a refresh)
    graceful_restart_time: int = 0
    report_interval: float = 10.0
    """At most one ``UpdateErrors`` event per this many seconds; the others are counted in it."""

    @property
    def accepts_incoming(self) -> bool:
        return self.connect in ("passive", "both")

    @property
    def dials(self) -> bool:
        return self.connect in ("active", "both")

    def hold_time_warning(self, hold: int) -> str | None:
        """The warning for a negotiated ``hold`` outside ``hold_range``, else ``None``."""
        if not hold or self.hold_range is None:
            return None
        low, high = self.hold_range
        if low <= hold <= high:
            return None
        label = self.hold_range_label or f"the allowed {low}-{high} s"
        return f"negotiated hold time {hold} s is outside {label}"

    def prefix_limit_reason(self, limit: int) -> str:
        """Why the session was reset when more than ``limit`` prefixes arrived."""
        note = f" ({self.prefix_limit_label})" if self.prefix_limit_label else ""
        return f"prefix limit {limit} exceeded{note}"
