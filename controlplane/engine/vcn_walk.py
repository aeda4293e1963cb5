"""The VCN side of a packet walk (R69-R75, R91): subnet egress, VCN ingress and appliances.

How it works: a walk is a state machine over locations (R93); this module has the three VCN ones, each a
step that appends its hop and returns the next location, None when the packet is delivered, or raises
``Ended``:

- *subnet egress* ``(SUBNET, vcn, subnet)``: a packet for an address of the same subnet is never routed,
  it is delivered directly (R70); otherwise the subnet's route table decides (R69) by a longest-prefix
  match over its static rules plus the VCN's local routes, a static rule beating a local route of the
  same prefix (R70). Target ``drg`` enters the DRG on the VCN's attachment (R71); a private IP goes to
  the appliance (R72); a gateway leaves the emulator's scope; a local route delivers; no match (the
  destination is outside the VCN) drops with NO_ROUTE_IN_VCN.
- *VCN ingress* ``(INGRESS, attachment)``: a packet leaving the DRG on a VCN attachment is routed by the
  attachment's ingress table, or by the implicit one (local routes only, R74), with the same lookup
  (R75); a DRG target is refused there (R73).
- *appliance* ``(APPLIANCE, vcn, appliance)``: the hop INSPECT applies the first-match policy (R91):
  DENY drops, ALLOW forwards the packet unchanged through the route table of the appliance's egress
  subnet. An appliance that is stopped, missing or still checking source/destination blackholes what
  is routed to it (R72, PRIVATE_IP_TARGET_DOWN), on the VCN hop whose rule targets it.

A DRG pass is ``(DRG, attachment)``, walked by ``engine/trace.py``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from controlplane.config.schema import AttachmentType
from controlplane.config.vcn import Appliance, RuleTarget, Subnet, Vcn, VcnRouteTable
from controlplane.engine.hops import (
    APPLIANCE,
    APPLIANCE_DENY,
    DROPPED,
    INGRESS_TARGET_REFUSED,
    LEFT_SCOPE,
    NO_DRG_ATTACHMENT,
    NO_ROUTE_IN_VCN,
    PRIVATE_IP_TARGET_DOWN,
    VCN,
    Ended,
    WalkRecord,
)
from controlplane.prefix import contains, key_length, parse_address, parse_prefix

Location = tuple[str, ...]  # (AT_DRG, att) | (AT_INGRESS, att) | (AT_SUBNET, vcn, subnet) | (AT_APPLIANCE, vcn, name)
AT_DRG, AT_INGRESS, AT_SUBNET, AT_APPLIANCE = "DRG", "INGRESS", "SUBNET", "APPLIANCE"


@dataclass(frozen=True)
class VcnMatch:
    """The rule a VCN lookup chose: a static rule with its target, or a local route (``target`` None)."""

    prefix: str
    target: RuleTarget | None

    @property
    def route_type(self) -> str:
        return "LOCAL" if self.target is None else "STATIC"


def inside(cidr: str, address: str) -> bool:
    afi, key = parse_prefix(cidr)
    address_afi, value = parse_address(address)
    return afi == address_afi and contains(afi, key, value)


def vcn_lookup(vcn: Vcn, table: VcnRouteTable | None, address: str) -> VcnMatch | None:
    """R70: longest prefix over the table's static rules and the VCN's local routes; for the same
    prefix the static rule wins (intra-VCN routing). None: no rule and outside the VCN."""
    candidates: list[tuple[str, RuleTarget | None]] = [(cidr, None) for cidr in vcn.cidrs]
    candidates += [(r.destination, r.target) for r in (table.rules if table else [])]
    best: tuple[int, bool] | None = None
    found = None
    for cidr, target in candidates:
        if inside(cidr, address):
            rank = (key_length(parse_prefix(cidr)[1]), target is not None)
            if best is None or rank > best:
                best, found = rank, VcnMatch(cidr, target)
    return found


def subnet_holding(vcn: Vcn, address: str) -> Subnet | None:
    return next((s for s in vcn.subnet_list if inside(s.cidr, address)), None)


def _down(vcn: Vcn, name: str, appliance: Appliance | None) -> str | None:
    """Why a private IP target blackholes what is routed to it (R72), if it does."""
    if appliance is None:
        return f"private IP target {name} is not an appliance of {vcn.name}: traffic to it is blackholed (R72)"
    what = f"appliance {name} ({appliance.private_ip})"
    if appliance.state == "stopped":
        return f"{what} is stopped: traffic routed to it is blackholed (R72)"
    if not appliance.skip_source_dest_check:
        return (f"{what} checks source/destination, so it drops forwarded packets: set "
                "skip_source_dest_check: true (R72)")
    return None


class VcnSteps(WalkRecord):
    """The VCN locations of a walk (R69-R75, R91); the DRG passes are added by ``trace._Walk``."""

    def attachment_of(self, vcn: str) -> str | None:
        """The attachment of ``vcn`` to the DRG, the one a ``drg`` target enters on (R71)."""
        return next((a.name for a in self.cfg.attachments if a.type == AttachmentType.VCN and a.vcn == vcn), None)

    def subnet_egress(self, vcn_name: str, subnet_name: str) -> Location | None:
        """R69, R70: a packet leaving a subnet (from a host, or from an appliance of it, R91)."""
        vcn = self.vcns[vcn_name]
        subnet = next((s for s in vcn.subnet_list if s.name == subnet_name), None)
        where = {"vcn": vcn.name, "subnet": subnet_name, "routeType": None}
        if subnet is None:
            raise self.drop(NO_ROUTE_IN_VCN, f"{vcn.name} has no subnet {subnet_name}", VCN, None, **where)
        if inside(subnet.cidr, self.target):  # R70: the same subnet is never routed
            self.add(VCN, None, None, None, "DELIVER", subnet.name, **where)
            return None
        match = vcn_lookup(vcn, vcn.route_table(subnet.route_table), self.target)
        return self.follow(vcn, match, None, subnet.route_table, where)

    def vcn_ingress(self, attachment: str) -> Location | None:
        """R73-R75: a packet leaving the DRG on a VCN attachment enters the VCN by its ingress table."""
        vcn = self.vcns[str(self.cfg.attachment(attachment).vcn)]
        name = self.ingress_tables.get(attachment)
        table = vcn.route_table(name) if name else None  # R74: no table = the implicit one, local routes only
        where = {"vcn": vcn.name, "subnet": None, "routeType": None}
        return self.follow(vcn, vcn_lookup(vcn, table, self.target), attachment, name, where)

    def follow(self, vcn: Vcn, match: VcnMatch | None, attachment: str | None, table: str | None,
               where: dict[str, Any]) -> Location | None:
        """Where a VCN lookup sends the packet (R70-R75); ``attachment`` is set at VCN ingress."""
        target, ingress = self.target, attachment is not None
        rule = match.prefix if match else None
        fields = {**where, "routeType": match.route_type if match else None}
        label = table or f"the implicit ingress table of {attachment} (R74)"
        if match is None:
            fix = " (R75)" if ingress else f" (R70); add a rule to {table} (R82: DRG routes never reach VCN tables)"
            raise self.drop(NO_ROUTE_IN_VCN, f"no route to {target} in {label} of {vcn.name}: it is outside "
                            f"{', '.join(vcn.cidrs)} and no rule matches{fix}", VCN, attachment, table, **fields)
        if match.target is None:  # a local route: delivered inside the VCN (R70, R75)
            holder = subnet_holding(vcn, target)
            self.add(VCN, attachment, table, rule, "DELIVER", holder.name if holder else None, **fields)
            return None
        kind, name = match.target.kind, match.target.name
        if kind == "private_ip":
            down = _down(vcn, str(name), vcn.appliance(str(name)))
            if down is not None:
                raise self.drop(PRIVATE_IP_TARGET_DOWN, down, VCN, attachment, table, rule, name, **fields)
            self.add(VCN, attachment, table, rule, "VCN_ROUTE", name, **fields)
            return AT_APPLIANCE, vcn.name, str(name)
        if match.target.leaves_scope:
            self.add(VCN, attachment, table, rule, "VCN_ROUTE", match.target.describe(), **fields)
            raise Ended(LEFT_SCOPE, kind.upper(), f"{rule} in {label} sends the packet to "
                        f"{match.target.describe()}, outside the emulator's scope (R75, R93)")
        if ingress:  # target drg
            raise self.drop(INGRESS_TARGET_REFUSED, f"{rule} in {label} targets the DRG: an ingress table may only "
                            "target a private IP, an LPG or a service gateway (R73)", VCN, attachment, table, rule,
                            "drg", **fields)
        entry = self.attachment_of(vcn.name)
        if entry is None:
            raise self.drop(NO_DRG_ATTACHMENT, f"{rule} in {table} targets the DRG, but {vcn.name} is not attached "
                            "to it (R71)", VCN, None, table, rule, "drg", **fields)
        self.add(VCN, None, table, rule, "VCN_ROUTE", entry, **fields)  # R71: enters on the VCN's attachment
        return AT_DRG, entry

    def appliance(self, vcn_name: str, name: str) -> Location:
        """R91: INSPECT by the first-match policy; allowed packets leave unchanged by the egress subnet."""
        vcn = self.vcns[vcn_name]
        found = vcn.appliance(name)
        assert found is not None  # checked by ``follow`` before the packet is sent here (R72)
        verdict = found.verdict(self.seen_src, self.target)
        fields = self.appliance_fields(vcn, found)
        if verdict == "deny":
            self.add(APPLIANCE, None, None, None, "INSPECT", None, **fields, verdict="DENY")
            raise Ended(DROPPED, APPLIANCE_DENY, f"{name} ({found.private_ip}) denies {self.seen_src} -> "
                        f"{self.target} by its policy (R91)")
        self.add(APPLIANCE, None, None, None, "INSPECT", found.egress, **fields, verdict="ALLOW")
        return AT_SUBNET, vcn.name, found.egress

    @staticmethod
    def appliance_fields(vcn: Vcn, appliance: Appliance) -> dict[str, Any]:
        return {"vcn": vcn.name, "subnet": appliance.subnet, "appliance": appliance.name,
                "privateIp": appliance.private_ip}

    def located(self, where: Location) -> tuple[str, str | None, dict[str, Any], str]:
        """A location as hop fields (kind, attachment, extra fields) and as words, for the loop drop (R89)."""
        if where[0] == AT_DRG:
            return "DRG", where[1], {}, f"a DRG pass entering on {where[1]}"
        if where[0] == AT_INGRESS:
            vcn = str(self.cfg.attachment(where[1]).vcn)
            return VCN, where[1], {"vcn": vcn, "subnet": None, "routeType": None}, \
                f"the ingress of {vcn} over {where[1]}"
        if where[0] == AT_SUBNET:
            return VCN, None, {"vcn": where[1], "subnet": where[2], "routeType": None}, \
                f"subnet {where[2]} of {where[1]}"
        vcn_obj = self.vcns[where[1]]
        appliance = vcn_obj.appliance(where[2])
        assert appliance is not None
        return APPLIANCE, None, {**self.appliance_fields(vcn_obj, appliance), "verdict": None}, \
            f"appliance {where[2]}"
