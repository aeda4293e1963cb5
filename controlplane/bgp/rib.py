"""Adj-RIB-In and Adj-RIB-Out of one neighbor, compact enough for a million routes.

Both are plain dicts per address family, ``prefix key (int) -> PathAttributes``, where one
attributes object is shared by every prefix of an UPDATE (and interned across UPDATEs), so a route
costs one dict slot and one small int.

Adj-RIB-In (RFC 4271 s.3.2) applies one UPDATE in C-speed bulk operations (``dict.update`` over a
``zip`` with ``itertools.repeat``) and never makes a per-prefix Python object.

Adj-RIB-Out keeps only what the DRG wants to advertise plus, for prefixes changed since the last
flush, what the neighbor was last told (``pending``). A flush compares the two, drops no-op
changes (a prefix set back to what was sent is not re-sent) and groups the announcements by
attribute object so the encoder can pack many prefixes into one UPDATE.
"""

from __future__ import annotations

from collections.abc import Iterable
from itertools import repeat

from controlplane.bgp.attributes import PathAttributes
from controlplane.prefix import AFI_IPV4, AFI_IPV6

_FAMILIES = (AFI_IPV4, AFI_IPV6)


class AdjRibIn:
    """Routes received from one neighbor, after RFC 7606 processing."""

    __slots__ = ("_interned", "routes")

    def __init__(self) -> None:
        self.routes: dict[int, dict[int, PathAttributes]] = {afi: {} for afi in _FAMILIES}
        self._interned: dict[PathAttributes, PathAttributes] = {}

    def intern(self, attributes: PathAttributes) -> PathAttributes:
        """The one shared object equal to ``attributes`` (bounded cache)."""
        found = self._interned.get(attributes)
        if found is not None:
            return found
        if len(self._interned) > 65536:
            self._interned.clear()
        self._interned[attributes] = attributes
        return attributes

    def update(
        self, afi: int, announced: Iterable[int], attributes: PathAttributes | None, withdrawn: Iterable[int]
    ) -> None:
        table = self.routes[afi]
        pop = table.pop
        for key in withdrawn:
            pop(key, None)
        if attributes is not None:
            table.update(zip(announced, repeat(attributes)))

    def count(self, afi: int) -> int:
        return len(self.routes[afi])

    def clear(self) -> None:
        for table in self.routes.values():
            table.clear()
        self._interned.clear()


class AdjRibOut:
    """What the DRG advertises to one neighbor, with the changes not yet sent."""

    __slots__ = ("pending", "routes")

    def __init__(self) -> None:
        self.routes: dict[int, dict[int, PathAttributes]] = {afi: {} for afi in _FAMILIES}
        # prefix -> what the neighbor was last told (None: nothing), for prefixes changed since
        # the last flush. A prefix is recorded once: later changes keep the first value.
        self.pending: dict[int, dict[int, PathAttributes | None]] = {afi: {} for afi in _FAMILIES}

    def set(self, afi: int, keys: Iterable[int], attributes: PathAttributes) -> None:
        table = self.routes[afi]
        pending = self.pending[afi]
        get = table.get
        for key in keys:
            if key not in pending:
                pending[key] = get(key)
            table[key] = attributes

    def remove(self, afi: int, keys: Iterable[int]) -> None:
        table = self.routes[afi]
        pending = self.pending[afi]
        pop = table.pop
        for key in keys:
            old = pop(key, None)
            if key not in pending:
                pending[key] = old

    def mark_all_unsent(self) -> None:
        """The session went down: the next one must be sent the whole table."""
        for afi in _FAMILIES:
            self.pending[afi] = {}

    def take_changes(self, afi: int) -> tuple[dict[PathAttributes, list[int]], list[int]]:
        """Announcements grouped by attributes, and withdrawals, since the last call."""
        pending = self.pending[afi]
        if not pending:
            return {}, []
        self.pending[afi] = {}
        table = self.routes[afi]
        announce: dict[PathAttributes, list[int]] = {}
        withdraw: list[int] = []
        for key, sent in pending.items():
            now = table.get(key)
            if now is None:
                if sent is not None:
                    withdraw.append(key)
            elif now != sent:
                group = announce.get(now)
                if group is None:
                    announce[now] = [key]
                else:
                    group.append(key)
        return announce, withdraw

    def full_table(self, afi: int) -> dict[PathAttributes, list[int]]:
        """Every route grouped by attributes (initial advertisement, ROUTE-REFRESH)."""
        self.pending[afi] = {}
        announce: dict[PathAttributes, list[int]] = {}
        for key, attributes in self.routes[afi].items():
            group = announce.get(attributes)
            if group is None:
                announce[attributes] = [key]
            else:
                group.append(key)
        return announce

    def count(self, afi: int) -> int:
        return len(self.routes[afi])
