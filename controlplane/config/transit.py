"""Transit through a hub VCN (oci-drg-transit.md R69-R93): the VCN side's errors and the design warnings.

How it works: :func:`check_transit` is called by ``validate()`` with the parsed file, its effective
configuration and the :class:`~controlplane.config.problems.Report`. Two halves:

- **Errors** (what OCI refuses, or what the emulator makes an error): names unique within a VCN
  (subnets, appliances, route tables); a subnet's ``route_table`` is a table of its VCN (R69, the
  ``default`` table exists implicitly); an appliance skips the source/destination check, sits in a
  subnet of its VCN that holds its ``private_ip`` (R72) and forwards through an existing egress subnet
  (R91); a ``private_ip`` target names an appliance of the table's own VCN (R72); an IPv6 destination
  targets only the DRG or an internet gateway (R71); an attachment's ``ingress_route_table`` is a table
  of the attached VCN, and the rules of a table used that way target only a private IP, an LPG or a
  service gateway (R73). Errors name the VCN and the field path (``appliances[0].subnet``), as schema
  errors do, or the attachment and ``ingress_route_table``.
- **Warnings** on every DRG route table in use, computed from the configuration alone. What an
  attachment offers for import: a VCN attachment its effective offers (subnet or VCN CIDRs plus its
  ingress table's destinations, R78); a BGP attachment what the file's ``onprem[].announce`` sends on
  its sessions; a STATIC tunnel its ``static_routes``. ``W-TRANSIT-SHADOW`` (R83): a table imports an
  ingress-derived offer with the same CIDR as another imported attachment's offer (the empty AS path
  of the VCN route wins over VC/IPSec routes; VCN against VCN is arbitrary). ``W-ECHO`` (R84): a VC or
  BGP tunnel would advertise, from a static rule or an imported ingress-derived offer, a prefix its own
  peer announces. ``W-BYPASS`` (R88): a static rule to a VCN attachment covers a more specific offer
  of another imported VCN attachment, which wins by longest prefix match. A warning's rule is its code;
  its message cites the R-number. R43/R44 on hub tables (R92 b) are ``config/ipsec.py``'s R44.4 check,
  which covers every table in use. Nothing here mutates anything.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from controlplane.config.effective import EffAttachment, EffectiveConfig, EffRouteTable
from controlplane.config.problems import Report, did_you_mean
from controlplane.config.schema import AttachmentType, DrgConfig, VcnAttachment
from controlplane.config.vcn import Subnet, Vcn
from controlplane.prefix import format_prefix

_INGRESS_TARGETS = ("private_ip", "lpg", "service_gateway")  # R73
_IPV6_TARGETS = ("drg", "internet_gateway")  # R71
_PEERS = (AttachmentType.VIRTUAL_CIRCUIT, AttachmentType.IPSEC_TUNNEL)


def check_transit(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    """Every transit rule on a parsed file: VCN objects first, then the DRG tables' warnings."""
    ingress = _ingress_users(cfg)
    for vcn in cfg.vcns:
        _vcn_names(vcn, r)
        _subnets(vcn, r)
        _appliances(vcn, r)
        _vcn_rules(cfg, vcn, ingress, r)
    _ingress_tables(cfg, r)
    offers = _Offers.of(cfg, eff)
    in_use = {a.route_table for a in eff.attachments}
    for table in eff.route_tables:
        if table.name in in_use and table.origin != "system":
            _shadow(eff, offers, table, r)
            _echo(eff, offers, table, r)
            _bypass(eff, offers, table, r)


def _ingress_users(cfg: DrgConfig) -> dict[tuple[str, str], list[str]]:
    """(VCN, VCN route table) -> the attachments that use that table as their ingress table."""
    users: dict[tuple[str, str], list[str]] = {}
    for att in cfg.attachments:
        if isinstance(att, VcnAttachment) and att.ingress_route_table is not None:
            users.setdefault((att.vcn, att.ingress_route_table), []).append(att.name)
    return users


# ---------------------------------------------------------------------------------------------- VCN objects

def _vcn_names(vcn: Vcn, r: Report) -> None:
    """Subnets, appliances and route tables are named uniquely within their VCN."""
    lists = (("subnets", [s.name for s in vcn.subnet_list]), ("appliances", [a.name for a in vcn.appliances]),
             ("route_tables", [t.name for t in vcn.route_tables]))
    for section, names in lists:
        for index, name in enumerate(names):
            if name in names[:index]:
                r.error(vcn.name, f"{section}[{index}]", "names", f"two {section} of {vcn.name} are named {name}",
                        f"rename {section}[{index}] of {vcn.name}: names identify objects within a VCN")


def _subnets(vcn: Vcn, r: Report) -> None:
    """R69: a subnet routes through a table of its VCN (``default`` exists even when not listed)."""
    tables = ["default", *(t.name for t in vcn.route_tables)]
    for index, subnet in enumerate(vcn.subnet_list):
        if vcn.route_table(subnet.route_table) is None:
            r.error(vcn.name, f"subnets[{index}].route_table", "R69", f"route table {subnet.route_table} of "
                    f"subnet {subnet.name} is not a route table of {vcn.name}",
                    f"define {subnet.route_table} under route_tables of {vcn.name}, or name one of its tables"
                    f"{did_you_mean(subnet.route_table, tables)}")


def _appliances(vcn: Vcn, r: Report) -> None:
    """R72: check off, subnet of this VCN holding the private IP; R91: the egress subnet exists."""
    subnets: dict[str, Subnet] = {}
    for item in vcn.subnet_list:
        subnets.setdefault(item.name, item)  # the first of a duplicate name (reported by _vcn_names)
    for index, app in enumerate(vcn.appliances):
        where = f"appliances[{index}]"
        if not app.skip_source_dest_check:  # R72 (EMULATOR CHOICE: an error)
            r.error(vcn.name, f"{where}.skip_source_dest_check", "R72", f"appliance {app.name} has its "
                    "source/destination check on: its VNIC drops every packet not addressed to it, so "
                    f"nothing routed to {app.private_ip} is forwarded",
                    f"set skip_source_dest_check: true on {app.name}")
        subnet = subnets.get(app.subnet)
        if subnet is None:
            r.error(vcn.name, f"{where}.subnet", "R72", f"subnet {app.subnet} of appliance {app.name} is not a "
                    f"subnet of {vcn.name}", f"name the subnet of {vcn.name} that holds {app.private_ip}"
                    f"{did_you_mean(app.subnet, subnets)}")
        elif ipaddress.ip_address(app.private_ip) not in ipaddress.ip_network(subnet.cidr):
            r.error(vcn.name, f"{where}.private_ip", "R72", f"private IP {app.private_ip} of appliance "
                    f"{app.name} is outside its subnet {subnet.name} ({subnet.cidr})",
                    f"use an address of {subnet.cidr}, or name the subnet that holds {app.private_ip}")
        if app.egress_subnet is not None and app.egress_subnet not in subnets:
            r.error(vcn.name, f"{where}.egress_subnet", "R91", f"egress subnet {app.egress_subnet} of "
                    f"appliance {app.name} is not a subnet of {vcn.name}",
                    f"name a subnet of {vcn.name}{did_you_mean(app.egress_subnet, subnets)}, or remove "
                    f"egress_subnet (default: its own subnet {app.subnet})")


def _vcn_rules(cfg: DrgConfig, vcn: Vcn, ingress: dict[tuple[str, str], list[str]], r: Report) -> None:
    """Targets of the VCN's route rules: R72 private IPs of this VCN, R71 IPv6, R73 ingress tables."""
    owners = {a.name: v.name for v in cfg.vcns for a in v.appliances}
    mine = [a.name for a in vcn.appliances]
    for ti, table in enumerate(vcn.route_tables):
        users = ingress.get((vcn.name, table.name), [])
        for ri, rule in enumerate(table.rules):
            where, target = f"route_tables[{ti}].rules[{ri}].target", rule.target
            if target.kind == "private_ip" and vcn.appliance(str(target.name)) is None:
                other = owners.get(str(target.name))
                found = f"an appliance of {other}, not of {vcn.name}" if other else "not a declared appliance"
                r.error(vcn.name, where, "R72", f"private IP target {target.name} of {table.name} "
                        f"({rule.destination}) is {found}: a private IP target is in the table's own VCN",
                        f"name an appliance of {vcn.name}{did_you_mean(str(target.name), mine)}, or declare "
                        f"{target.name} under appliances of {vcn.name}")
            if ":" in rule.destination and target.kind not in _IPV6_TARGETS:
                r.error(vcn.name, where, "R71", f"rule {rule.destination} of {table.name} targets "
                        f"{target.describe()}: an IPv6 destination may only target the DRG or an internet "
                        "gateway", "target drg or internet_gateway, or use an IPv4 destination")
            if users and target.kind not in _INGRESS_TARGETS:
                r.error(vcn.name, where, "R73", f"{table.name} is the ingress route table of "
                        f"{', '.join(users)}: its rule {rule.destination} may not target {target.describe()}",
                        "target an appliance ({private_ip: NAME}), an LPG or a service gateway, or give "
                        f"{', '.join(users)} another ingress_route_table")


def _ingress_tables(cfg: DrgConfig, r: Report) -> None:
    """R73: an attachment's ingress table is a route table of the attached VCN (R74: or none)."""
    vcns = {v.name: v for v in cfg.vcns}
    drg_tables = {t.name for t in cfg.route_tables}
    for att in cfg.attachments:
        name = att.ingress_route_table if isinstance(att, VcnAttachment) else None
        vcn = vcns.get(att.vcn) if isinstance(att, VcnAttachment) else None
        if name is None or vcn is None or vcn.route_table(name) is not None:
            continue  # an unknown VCN is reported by the reference checks
        holders = [v.name for v in cfg.vcns if v.route_table(name) is not None]
        why = (f" (it is a route table of {holders[0]})" if holders else
               " (it is a DRG route table; ingress_route_table names a VCN route table)" if name in drg_tables
               else "")
        tables = ["default", *(t.name for t in vcn.route_tables)]
        r.error(att.name, "ingress_route_table", "R73", f"{name} is not a route table of {vcn.name}, the VCN "
                f"of {att.name}{why}", f"name a route table of {vcn.name}{did_you_mean(name, tables)}, or "
                f"define {name} under route_tables of {vcn.name}, or remove ingress_route_table (R74)")


# ---------------------------------------------------------------------------------------------- warnings

@dataclass
class _Offers:
    """What each attachment offers for import, as CIDR strings, from the configuration alone."""

    all: dict[str, list[str]] = field(default_factory=dict)
    ingress: dict[str, list[str]] = field(default_factory=dict)  # VCN: ingress-derived offers only (R78)
    ingress_table: dict[str, str] = field(default_factory=dict)
    announced: dict[str, list[str]] = field(default_factory=dict)  # BGP: what its peers announce

    @classmethod
    def of(cls, cfg: DrgConfig, eff: EffectiveConfig) -> _Offers:
        result = cls()
        sessions = {s.session: a.name for a in eff.attachments for s in a.sessions}
        for peer in cfg.onprem:
            owner = sessions.get(peer.session)
            if owner is not None:
                result.announced.setdefault(owner, []).extend(route.prefix for route in peer.announce)
        vcns = {v.name: v for v in cfg.vcns}
        for att in eff.attachments:
            result.all[att.name] = [format_prefix(afi, key) for afi, key in att.offers]
            result.all[att.name] += result.announced.get(att.name, [])
        for vatt in cfg.attachments:
            vcn = vcns.get(vatt.vcn) if isinstance(vatt, VcnAttachment) else None
            if not isinstance(vatt, VcnAttachment) or vcn is None or vatt.ingress_route_table is None:
                continue
            table = vcn.route_table(vatt.ingress_route_table)
            base = vcn.subnet_cidrs if vatt.vcn_route_type == "SUBNET_CIDRS" else vcn.cidrs
            extra = [rule.destination for rule in table.rules if rule.destination not in base] if table else []
            result.ingress[vatt.name] = list(dict.fromkeys(extra))
            result.ingress_table[vatt.name] = vatt.ingress_route_table
        return result


def _importer(eff: EffectiveConfig, table: EffRouteTable, att: EffAttachment) -> str:
    """The statement that imports ``att`` into ``table``: ``MATCH_ALL in rd-hub``."""
    dist = eff.find_distribution(table.import_distribution)
    stmt = next((s for s in dist.statements if s.matches(att)), None) if dist is not None else None
    return f"{stmt.match.describe()} in {dist.name}" if stmt is not None and dist is not None else "its import"


def _shadow(eff: EffectiveConfig, offers: _Offers, table: EffRouteTable, r: Report) -> None:
    """W-TRANSIT-SHADOW (R83): an ingress-derived offer competes with the real origin's route."""
    imported = [a for a in eff.imported_attachments(table.name) if a.type in (AttachmentType.VCN, *_PEERS)]
    cidrs = dict.fromkeys(c for a in imported for c in offers.ingress.get(a.name, []))
    for cidr in cidrs:
        hubs = [a for a in imported if cidr in offers.ingress.get(a.name, [])]
        others = [a.name for a in imported if a not in hubs and cidr in offers.all.get(a.name, [])]
        if len(hubs) + len(others) < 2:
            continue
        hub = hubs[0]
        r.warn(table.name, "import_distribution", "W-TRANSIT-SHADOW", f"R83: {table.name} imports {cidr} from "
               f"{', '.join(h.name for h in hubs)} (ingress route table {offers.ingress_table[hub.name]}, "
               f"provenance VCN, empty AS path) and from {', '.join(others or [h.name for h in hubs[1:]])}: "
               "the VCN route wins over VC/IPSec routes on AS path length (VCN against VCN is arbitrary), "
               "so traffic to the real origin goes to the hub",
               f"import into {table.name} without {hub.name} ({_importer(eff, table, hub)} imports it), "
               f"or remove {cidr} from {offers.ingress_table[hub.name]}")


def _echo(eff: EffectiveConfig, offers: _Offers, table: EffRouteTable, r: Report) -> None:
    """W-ECHO (R84): a VC or BGP tunnel would advertise back a prefix its own peer announces."""
    peers = [a for a in eff.attachments_using(table.name) if a.type in _PEERS and a.advertises]
    if not peers:
        return
    sources: list[tuple[str, str, str, str]] = []  # (cidr, field, origin, fix)
    for route in table.static_routes:
        sources.append((route.destination, f"static_routes[{route.file_index}]", "a static rule (R84: static "
                        "rules are advertised)", f"remove static route {route.destination} from {table.name}"))
    for att in eff.imported_attachments(table.name):
        for cidr in offers.ingress.get(att.name, []):
            sources.append((cidr, "import_distribution", f"{att.name}'s ingress route table "
                            f"{offers.ingress_table[att.name]}", f"import into {table.name} without {att.name} "
                            f"({_importer(eff, table, att)} imports it): use static rules for the spoke CIDRs "
                            f"-> {att.name} instead (R86, R92), or remove {cidr} from "
                            f"{offers.ingress_table[att.name]}"))
    for cidr, fld, origin, fix in sources:
        echoed = [p.name for p in peers if cidr in offers.announced.get(p.name, [])]
        if echoed:
            r.warn(table.name, fld, "W-ECHO", f"R84: {table.name} would advertise {cidr} (from {origin}) back to "
                   f"{', '.join(echoed)}, whose peer announces it", fix)


def _bypass(eff: EffectiveConfig, offers: _Offers, table: EffRouteTable, r: Report) -> None:
    """W-BYPASS (R88): a more specific dynamic VCN route inside a static rule to another VCN attachment."""
    imported = [a for a in eff.imported_attachments(table.name) if a.type == AttachmentType.VCN]
    for route in table.static_routes:
        hop = eff.find_attachment(route.next_hop)
        if hop is None or hop.type != AttachmentType.VCN:
            continue  # R14, R17 report these
        outer = ipaddress.ip_network(route.destination)
        for att in imported:
            if att.name == hop.name:
                continue
            inner = [c for c in offers.all.get(att.name, []) if _strictly_inside(c, outer)]
            if inner:
                r.warn(table.name, f"static_routes[{route.file_index}]", "W-BYPASS", f"R88: {table.name} holds "
                       f"static {route.destination} -> {hop.name} but imports the more specific "
                       f"{', '.join(inner)} from {att.name}: longest prefix match sends that traffic to "
                       f"{att.name}, bypassing {hop.name}",
                       f"import into {table.name} without {att.name} ({_importer(eff, table, att)} imports "
                       f"it), or add static rules for {', '.join(inner)} -> {hop.name}")


def _strictly_inside(cidr: str, outer: ipaddress.IPv4Network | ipaddress.IPv6Network) -> bool:
    inner = ipaddress.ip_network(cidr)
    return (inner.version == outer.version and inner != outer
            and inner.subnet_of(outer))  # type: ignore[arg-type]  # same version checked
