"""The VCN side of the file: subnets, VCN route tables and appliances (oci-drg-transit.md R69-R93).

A VCN is its CIDRs and its subnets. A subnet is a plain CIDR string (today's files: the subnet is
named by its CIDR and uses the VCN's ``default`` route table) or ``{name, cidr, route_table}``. A
VCN route table (not a DRG route table) holds static rules ``{destination, target}`` whose target is
``drg`` (the DRG attached to this VCN, R71), ``{private_ip: NAME}`` (an appliance of this VCN, R72),
or a gateway that ends a trace with ``LEFT_SCOPE`` (``internet_gateway``, ``nat_gateway``,
``{lpg: NAME}``, ``{service_gateway: NAME}``). Every VCN has a ``default`` table, empty unless the
file lists one of that name. An appliance is a private IP with its source/destination check off
(R72) that inspects what is routed to it and forwards it through its egress subnet's table (R91).
Checks across objects (targets inside an ingress table, R73; the appliance's subnet, R72) live in
``config/transit.py``; this module checks one object at a time.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, model_validator

from controlplane.config.fields import Cidr, IpAddress, Name, rule_error
from controlplane.config.fields import StrictModel as _Model

DEFAULT_VCN_TABLE = "default"
TargetKind = Literal["drg", "private_ip", "internet_gateway", "nat_gateway", "lpg", "service_gateway"]
_NAMED_TARGETS = ("private_ip", "lpg", "service_gateway")
_BARE_TARGETS = ("drg", "internet_gateway", "nat_gateway")
_TARGET_FIX = ("write target: drg, internet_gateway, nat_gateway, {private_ip: NAME}, {lpg: NAME} or "
               "{service_gateway: NAME}")


@dataclass(frozen=True)
class RuleTarget:
    """Where a VCN route rule sends a packet (S24 target kinds); ``name`` for the named kinds."""

    kind: TargetKind
    name: str | None = None

    def describe(self) -> str:
        return f"{self.kind} {self.name}" if self.name else self.kind

    def to_json(self) -> Any:
        return {self.kind: self.name} if self.name else self.kind

    @property
    def leaves_scope(self) -> bool:
        """Gateways the emulator does not model: a trace that reaches one ends LEFT_SCOPE (R75, R93)."""
        return self.kind not in ("drg", "private_ip")


def parse_target(raw: Any) -> RuleTarget:
    if isinstance(raw, RuleTarget):
        return raw
    if isinstance(raw, str) and raw in _BARE_TARGETS:
        return RuleTarget(raw)  # type: ignore[arg-type]  # narrowed by the membership test
    if isinstance(raw, dict) and len(raw) == 1:
        (kind, name), = raw.items()
        if kind in _NAMED_TARGETS and isinstance(name, str) and name:
            return RuleTarget(kind, name)
    raise rule_error("schema", f"invalid route rule target {raw!r}", _TARGET_FIX, field="target")


class VcnRouteRule(_Model):
    """A static rule of a VCN route table (``RouteRule``, routeType STATIC)."""

    destination: Cidr
    target: RuleTarget
    description: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _parse_target(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "target" not in data:
            return data
        return {**data, "target": parse_target(data["target"])}


class VcnRouteTable(_Model):
    """A VCN route table (``RouteTable``): a subnet's egress table, or an attachment's ingress table (R73)."""

    name: Name
    rules: Annotated[list[VcnRouteRule], Field(max_length=200)] = []  # S24: 200 rules per table
    display_name: str | None = None


class Subnet(_Model):
    name: Name
    cidr: Cidr
    route_table: str = DEFAULT_VCN_TABLE


PolicyAction = Literal["allow", "deny"]


class PolicyRule(_Model):
    """One first-match entry of an appliance's policy (R91); an absent ``src``/``dst`` matches anything."""

    action: PolicyAction
    src: Cidr | None = None
    dst: Cidr | None = None

    def matches(self, src: str, dst: str) -> bool:
        return all(cidr is None or ipaddress.ip_address(addr) in ipaddress.ip_network(cidr)
                   for cidr, addr in ((self.src, src), (self.dst, dst)))


class Appliance(_Model):
    """A private IP used as a route target: a firewall or another network virtual appliance (R72, R91)."""

    name: Name
    private_ip: IpAddress
    subnet: str
    skip_source_dest_check: bool = False
    egress_subnet: str | None = None  # whose route table forwards its output; default ``subnet``
    state: Literal["running", "stopped"] = "running"
    policy: PolicyAction | list[PolicyRule] = "allow"

    @property
    def egress(self) -> str:
        return self.egress_subnet or self.subnet

    def verdict(self, src: str, dst: str) -> PolicyAction:
        """First match of the policy list (R91); a bare ``allow``/``deny`` applies to everything;
        a list that matches nothing allows."""
        if isinstance(self.policy, str):
            return self.policy
        return next((rule.action for rule in self.policy if rule.matches(src, dst)), "allow")


class Vcn(_Model):
    name: Name
    cidrs: Annotated[list[Cidr], Field(min_length=1)]
    subnets: list[Cidr | Subnet] = []
    appliances: list[Appliance] = []
    route_tables: Annotated[list[VcnRouteTable], Field(max_length=300)] = []  # S24: 300 tables per VCN

    @property
    def subnet_list(self) -> list[Subnet]:
        """Every subnet as an object: a plain CIDR is a subnet named by its CIDR on the ``default`` table
        (built without validation: a CIDR is not a valid ``Name``)."""
        return [s if isinstance(s, Subnet) else Subnet.model_construct(name=s, cidr=s) for s in self.subnets]

    @property
    def subnet_cidrs(self) -> list[str]:
        return [s.cidr if isinstance(s, Subnet) else s for s in self.subnets]

    def route_table(self, name: str) -> VcnRouteTable | None:
        """A table of this VCN by name; ``default`` exists (empty) even when the file does not list it."""
        found = next((t for t in self.route_tables if t.name == name), None)
        if found is None and name == DEFAULT_VCN_TABLE:
            return VcnRouteTable(name=DEFAULT_VCN_TABLE)
        return found

    def appliance(self, name: str) -> Appliance | None:
        return next((a for a in self.appliances if a.name == name), None)


def _members(vcn: Vcn | None, kind: str) -> dict[str, VcnRouteTable | Appliance]:
    if vcn is None:
        return {}
    items: list[VcnRouteTable] | list[Appliance] = vcn.route_tables if kind == "route table" else vcn.appliances
    return {x.name: x for x in items}


def vcn_changes(old: list[Vcn], new: list[Vcn]) -> list[str]:
    """What a new configuration changes on the VCN side, one line per VCN route table or appliance
    (the ``changes`` of a ``config-applied`` event: these objects have no DRG table diff of their own)."""
    lines: list[str] = []
    before, after = {v.name: v for v in old}, {v.name: v for v in new}
    for name in sorted(before.keys() | after.keys()):
        for kind in ("route table", "appliance"):
            was, now = _members(before.get(name), kind), _members(after.get(name), kind)
            for item in sorted(was.keys() | now.keys()):
                if item not in now:
                    lines.append(f"VCN {name} {kind} {item} removed")
                elif item not in was:
                    lines.append(f"VCN {name} {kind} {item} added")
                elif was[item] != now[item]:
                    lines.append(f"VCN {name} {kind} {item} changed")
    return lines
