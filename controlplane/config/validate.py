"""OCI's rules on a parsed configuration: what OCI would reject, each with a concrete fix.

How it works: :func:`validate` builds the effective configuration (``config/effective.py``: defaults and system
objects included) and runs one check function per family of rules over the file and the effective
view together; each appends :class:`~controlplane.config.schema.Problem` records naming the file object (a
distribution and ``statements[i]``, a table and ``static_routes[i]``, an attachment and a field) so
the user knows what to edit. Errors are what OCI refuses; warnings are what OCI accepts but is likely
wrong, or limits the emulator reports without enforcing (R15). The IPSec-over-FastConnect checks
(R39-R41, R43-R45) live in ``config/ipsec.py``, the transit ones (R69-R93: subnets, appliances, VCN route
tables, ingress tables and the ``W-TRANSIT-SHADOW``/``W-ECHO``/``W-BYPASS`` warnings) in ``config/transit.py``.
Nothing here mutates anything.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path
from typing import Any

from controlplane.config.effective import AUTOGEN_RD_EXPORT, EffectiveConfig, build_effective
from controlplane.config.effective_json import config_json
from controlplane.config.fields import split_host_port
from controlplane.config.load import load_config, parse_config
from controlplane.config.problems import ConfigError, Report, Validation
from controlplane.config.problems import did_you_mean as did_you_mean  # re-exported (engine/offline.py)
from controlplane.config.schema import (
    AttachmentType,
    DrgConfig,
    IpsecTunnelAttachment,
    VcnAttachment,
    VirtualCircuitAttachment,
)

LIMIT_TABLES = 100  # section 10: DRG route tables per DRG (cannot be raised)
LIMIT_STATIC_RULES = 100  # R14: static rules per table
LIMIT_IMPORT_DISTRIBUTIONS = 100  # R25
LIMIT_STATEMENTS = 300  # R25
LIMIT_VCN_ATTACHMENTS = 300  # section 10
LIMIT_PER_TABLE = 300  # section 10: VCN / VC / IPSec attachments assigned to one table, each
LIMIT_VCS = 10  # section 10: virtual circuits per region (a raisable service limit: warning only)


def validate(config: DrgConfig, file: str = "<config>") -> Validation:
    """Every OCI rule on a parsed configuration: errors reject it, warnings do not."""
    from controlplane.config.ipsec import check_ipsec_over_fastconnect, check_transport_only
    from controlplane.config.rpc_sockets import check_rpc_sockets
    from controlplane.config.transit import check_transit

    eff = build_effective(config)
    report = Report(file)
    _names(config, eff, report)
    _references(config, eff, report)
    _vcns(config, report)
    check_transit(config, eff, report)  # R69-R93: VCN objects, ingress tables, transit warnings
    _static_routes(config, eff, report)
    _distributions(config, eff, report)
    _limits(config, eff, report)
    check_transport_only(config, eff, report)  # before R41: R44 names the statements first
    check_ipsec_over_fastconnect(config, eff, report)
    _sessions(config, report)
    check_rpc_sockets(config, report)  # R109: RPC sessions to other daemons
    return report.result


def validate_file(path: str | Path) -> tuple[DrgConfig | None, Validation]:
    """Load and validate a file: schema problems or OCI-rule problems, all of them."""
    try:
        config = load_config(path)
    except ConfigError as exc:
        return None, Validation(errors=list(exc.problems))
    return config, validate(config, str(path))


def validation_json(result: Validation, config: DrgConfig | None) -> dict[str, Any]:
    """``drg validate --json``: the errors, or the effective configuration and the warnings."""
    if not result.ok or config is None:
        return {"valid": False, "errors": [p.to_json() for p in result.errors]}
    warnings = [p.to_json() for p in result.warnings]
    return {"valid": True, "warnings": warnings, "config": config_json(config)}


# ---------------------------------------------------------------------------------------------- names

def _names(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    sections: list[tuple[str, list[Any]]] = [("vcns", cfg.vcns), ("attachments", cfg.attachments),
                                             ("route_tables", cfg.route_tables),
                                             ("distributions", cfg.distributions), ("onprem", cfg.onprem)]
    for section, items in sections:
        seen: set[str] = set()
        for index, item in enumerate(items):
            if item.name in seen:
                r.error(item.name, None, "names", f"two entries of {section} are named {item.name}",
                        f"rename {section}[{index}]: names identify objects")
            seen.add(item.name)
    loopbacks = {a.name: a for a in eff.attachments if a.type == AttachmentType.LOOPBACK}
    for att in cfg.attachments:
        lb = loopbacks.get(att.name)
        if lb is not None:  # R2, R6: the system creates the loopbacks
            r.error(att.name, "name", "R2", f"{att.name} is the name of the system LOOPBACK attachment of "
                    f"tunnel {lb.tunnel}", f"rename {att.name}: <tunnel>-lb names belong to the system")
    system_tables = {t.name for t in eff.route_tables if t.origin == "system"}
    system_dists = {d.name for d in eff.distributions if d.origin == "system"}
    for table in cfg.route_tables:
        if table.name in system_tables:  # R46
            r.error(table.name, "name", "R46", f"{table.name} is the name of a system loopback route table",
                    f"rename {table.name}: <vc>-lb-rt names belong to the system")
    for dist in cfg.distributions:
        if dist.name in system_dists:  # R46
            r.error(dist.name, "name", "R46", f"{dist.name} is the name of a system loopback distribution",
                    f"rename {dist.name}: <vc>-lb-rd names belong to the system")


# ---------------------------------------------------------------------------------------------- references

def _references(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    """Every name that points at another object points at one of the right kind."""
    _attachment_references(cfg, eff, r)
    _table_references(cfg, eff, r)
    _statement_references(cfg, eff, r)
    _session_references(cfg, eff, r)


def _attachment_references(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    vcns = [v.name for v in cfg.vcns]
    tables = {t.name: t for t in eff.route_tables}
    atts = {a.name: a for a in eff.attachments}
    vcs = [a.name for a in eff.attachments if a.type == AttachmentType.VIRTUAL_CIRCUIT]
    for att in cfg.attachments:
        if isinstance(att, VcnAttachment) and att.vcn not in vcns:
            r.error(att.name, "vcn", "reference", f"VCN {att.vcn} is not defined",
                    f"define {att.vcn} under vcns, or name a defined VCN{did_you_mean(att.vcn, vcns)}")
        if att.route_table is not None:
            table = tables.get(att.route_table)
            if table is None:
                r.error(att.name, "route_table", "reference", f"route table {att.route_table} is not defined",
                        f"define it under route_tables, or name a defined table"
                        f"{did_you_mean(att.route_table, tables)}")
            elif table.origin == "system":
                r.error(att.name, "route_table", "R46", f"{table.name} is a system loopback table",
                        f"give {att.name} a table of its own under route_tables")
        if isinstance(att, IpsecTunnelAttachment) and att.transport_attachment is not None:
            vc = atts.get(att.transport_attachment)
            if vc is None:
                r.error(att.name, "transport_attachment", "reference",
                        f"attachment {att.transport_attachment} is not defined",
                        f"name the VIRTUAL_CIRCUIT attachment that carries this tunnel"
                        f"{did_you_mean(att.transport_attachment, vcs)}")
            elif vc.type != AttachmentType.VIRTUAL_CIRCUIT:
                r.error(att.name, "transport_attachment", "R7",
                        f"{vc.name} is a {vc.type} attachment, not a virtual circuit",
                        "name the VIRTUAL_CIRCUIT attachment that carries this tunnel, or remove "
                        "transport_attachment for a tunnel over the internet")


def _table_references(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    dists = {d.name: d for d in eff.distributions}
    for rt in cfg.route_tables:
        name = rt.import_distribution
        if name is None:
            continue
        dist = dists.get(name)
        if dist is None:
            r.error(rt.name, "import_distribution", "reference", f"distribution {name} is not defined",
                    f"define it under distributions, or name a defined one{did_you_mean(name, dists)}")
        elif dist.type != "IMPORT":
            r.error(rt.name, "import_distribution", "R11", f"{name} is an EXPORT distribution",
                    "name an IMPORT distribution")
        elif dist.origin == "system":
            r.error(rt.name, "import_distribution", "R46", f"{name} is a system loopback distribution",
                    f"give {rt.name} a distribution of its own")


def _statement_references(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    atts = {a.name: a for a in eff.attachments}
    for rd in cfg.distributions:
        for index, stmt in enumerate(rd.statements):
            target = stmt.match.value
            if stmt.match.kind != "attachment" or target is None:
                continue
            matched = atts.get(target)
            if matched is None:
                r.error(rd.name, f"statements[{index}]", "reference", f"attachment {target} is not defined",
                        f"name a defined attachment{did_you_mean(target, atts)}, or remove statement "
                        f"priority {stmt.priority} from {rd.name}")
            elif matched.type == AttachmentType.LOOPBACK:
                r.error(rd.name, f"statements[{index}]", "R5", f"{target} is a system LOOPBACK attachment: "
                        "routing to loopbacks is system-managed", f"remove statement priority "
                        f"{stmt.priority} from {rd.name}; the system statements import the loopbacks (R45)")


def _session_references(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    atts = {a.name: a for a in eff.attachments}
    sessions = [s.session for _, s in eff.bgp_sessions()]
    six = {s.session: a for a in eff.attachments for s in a.sessions[1:]}  # <vc>.ipv6 (R53)
    for a in eff.attachments:
        for s in a.sessions[1:]:
            if s.session in atts:
                r.error(s.session, "name", "reference", f"{s.session} is the name of {a.name}'s IPv6 session",
                        f"rename attachment {s.session}")
    for peer in cfg.onprem:
        session = atts.get(peer.session) or six.get(peer.session)
        if session is None:
            r.error(peer.name, "session", "reference", f"attachment {peer.session} is not defined",
                    f"name a VIRTUAL_CIRCUIT or BGP tunnel attachment{did_you_mean(peer.session, sessions)}")
        elif not session.speaks_bgp:
            rule = "R38" if session.type == AttachmentType.IPSEC_TUNNEL else "reference"
            r.error(peer.name, "session", rule, f"{session.name} ({session.type}) has no BGP session",
                    "name a VIRTUAL_CIRCUIT or BGP tunnel attachment")


def _vcns(cfg: DrgConfig, r: Report) -> None:
    attached: dict[str, str] = {}
    for att in cfg.attachments:
        if isinstance(att, VcnAttachment):
            first = attached.setdefault(att.vcn, att.name)
            if first != att.name:  # R3: a VCN is attached once to a DRG
                r.error(att.name, "vcn", "R3", f"VCN {att.vcn} is already attached through {first}",
                        f"remove {att.name}, or attach another VCN")
    for vcn in cfg.vcns:
        cidrs = [ipaddress.ip_network(c) for c in vcn.cidrs]
        for index, text in enumerate(vcn.subnet_cidrs):
            subnet = ipaddress.ip_network(text)
            if not any(subnet.version == c.version and subnet.subnet_of(c)  # type: ignore[arg-type]
                       for c in cidrs):
                r.error(vcn.name, f"subnets[{index}]", "R22", f"subnet {text} is outside the CIDRs of "
                        f"{vcn.name}",
                        f"add a CIDR covering {text} to {vcn.name}, or correct the subnet")


def _static_routes(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    """R14: CIDR_BLOCK only (schema), next hop a VCN attachment (or an RPC, R104), one rule per CIDR, at
    most 100."""
    atts = {a.name: a for a in eff.attachments}
    vcn_atts = [a.name for a in eff.attachments if a.type == AttachmentType.VCN]
    for table in cfg.route_tables:
        if len(table.static_routes) > LIMIT_STATIC_RULES:
            r.error(table.name, "static_routes", "R14", f"{len(table.static_routes)} static rules, over "
                    f"OCI's {LIMIT_STATIC_RULES} per table", f"keep at most {LIMIT_STATIC_RULES} static "
                    "routes")
        seen: dict[str, int] = {}
        for index, route in enumerate(table.static_routes):
            where = f"static_routes[{index}]"
            if route.destination in seen:
                r.error(table.name, where, "R14", f"a second static rule for {route.destination} in "
                        f"{table.name}",
                        f"remove static_routes[{index}] or static_routes[{seen[route.destination]}]")
            seen.setdefault(route.destination, index)
            att = atts.get(route.next_hop)
            if att is None:
                r.warn(table.name, where, "R17", f"next hop {route.next_hop} does not exist: the rule is a "
                       "blackhole (traffic to it is dropped)", "point it at a VCN attachment"
                       f"{did_you_mean(route.next_hop, vcn_atts)}, or remove it")
            elif att.type == AttachmentType.REMOTE_PEERING_CONNECTION:
                _static_to_rpc(eff, r, table.name, where, route.destination, att.name)
            elif att.type != AttachmentType.VCN:
                extra = " (routing to loopbacks is system-managed, R5)" if att.type == AttachmentType.LOOPBACK else ""
                r.error(table.name, where, "R14", f"static rules may not point at {att.type} attachment "
                        f"{att.name}{extra}", "use a VCN attachment as next hop; on-premises routes come "
                        "from BGP or from a STATIC tunnel's static_routes")


def _static_to_rpc(eff: EffectiveConfig, r: Report, table: str, where: str, destination: str, rpc: str) -> None:
    """R104: a static rule may point at an RPC attachment (S11), but its table may then not be used by
    a VC or IPSec tunnel attachment (S18 UpdateDrgRouteTableDetails)."""
    onprem = [a for a in eff.attachments_using(table)
              if a.type in (AttachmentType.VIRTUAL_CIRCUIT, AttachmentType.IPSEC_TUNNEL)]
    if onprem:
        users = ", ".join(f"{a.name} ({a.type})" for a in onprem)
        r.error(table, where, "R104", f"static rule {destination} -> {rpc} (REMOTE_PEERING_CONNECTION) in "
                f"{table}, which {users} uses: a table with a static rule to an RPC cannot be assigned to a VC "
                "or IPSec tunnel", f"remove static route {destination} from {table} and let {table} import "
                f"the RPC's routes (e.g. a REMOTE_PEERING_CONNECTION statement), or give {onprem[0].name} "
                "another table")


def _distributions(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    for dist in cfg.distributions:
        if dist.type == "EXPORT" and dist.name != AUTOGEN_RD_EXPORT:  # R11
            r.error(dist.name, "type", "R11", "OCI allows no export distribution but the default one",
                    f"remove {dist.name}; attachments choose export_distribution: default or none")
        elif dist.type == "EXPORT" and [s.match.kind for s in dist.statements] != ["all"]:
            r.error(dist.name, "statements", "R11", f"{AUTOGEN_RD_EXPORT} must keep its one MATCH_ALL "
                    "statement (non-default export distributions are not allowed)",
                    f"remove {dist.name} from the file, or give it the one statement "
                    f"{{priority: 1, match: all}}")
        elif dist.type == "IMPORT" and dist.name == AUTOGEN_RD_EXPORT:
            r.error(dist.name, "type", "R10", f"{AUTOGEN_RD_EXPORT} is the default export distribution",
                    "set type: EXPORT, or rename this import distribution")
        seen: dict[int, int] = {}
        for index, stmt in enumerate(dist.statements):
            if stmt.priority in seen:  # R20
                r.error(dist.name, f"statements[{index}]", "R20", f"priority {stmt.priority} is used twice "
                        f"in {dist.name} (statements[{seen[stmt.priority]}])",
                        f"give statements[{index}] a priority not used in {dist.name}")
            seen.setdefault(stmt.priority, index)
        if len(dist.statements) > LIMIT_STATEMENTS:  # R25
            r.error(dist.name, "statements", "R25", f"{len(dist.statements)} statements, over OCI's "
                    f"{LIMIT_STATEMENTS} per distribution", f"keep at most {LIMIT_STATEMENTS} statements")
    imports = [d for d in eff.distributions if d.type == "IMPORT"]
    if len(imports) > LIMIT_IMPORT_DISTRIBUTIONS:  # R25
        r.error("distributions", None, "R25", f"{len(imports)} import distributions (defaults and system "
                f"ones included), over OCI's {LIMIT_IMPORT_DISTRIBUTIONS}",
                "merge distributions that import the same attachments")


def _limits(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    """Section 10 limits OCI enforces when objects are created; region limits are warnings."""
    if len(eff.route_tables) > LIMIT_TABLES:
        r.error("route_tables", None, "limits", f"{len(eff.route_tables)} route tables (defaults and system "
                f"ones included), over OCI's {LIMIT_TABLES} per DRG", "share tables between attachments")
    vcn_count = sum(1 for a in cfg.attachments if isinstance(a, VcnAttachment))
    if vcn_count > LIMIT_VCN_ATTACHMENTS:
        r.error("attachments", None, "limits", f"{vcn_count} VCN attachments, over OCI's "
                f"{LIMIT_VCN_ATTACHMENTS}",
                f"keep at most {LIMIT_VCN_ATTACHMENTS} VCN attachments per DRG")
    for table in eff.route_tables:
        users = eff.attachments_using(table.name)
        for kind in ("VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL"):
            count = sum(1 for a in users if a.type == kind)
            if count > LIMIT_PER_TABLE:
                r.error(table.name, None, "limits", f"{count} {kind} attachments use {table.name}, over "
                        f"OCI's {LIMIT_PER_TABLE}", f"spread the {kind} attachments over more tables")
    vcs = sum(1 for a in cfg.attachments if isinstance(a, VirtualCircuitAttachment))
    if vcs > LIMIT_VCS:
        r.warn("attachments", None, "limits", f"{vcs} virtual circuits, over OCI's default region limit of "
               f"{LIMIT_VCS}", "ask for a service limit increase before building this in OCI")


def _sessions(cfg: DrgConfig, r: Report) -> None:
    """BGP session facts: R52, R53, R55, R65 and unambiguous sockets for the lab."""
    customer_ips: dict[str, str] = {}
    accepting: dict[str, str] = {}
    for att in cfg.attachments:
        if not isinstance(att, VirtualCircuitAttachment | IpsecTunnelAttachment) or att.bgp is None:
            continue
        bgp = att.bgp
        if isinstance(att, IpsecTunnelAttachment) and att.static_routes:
            r.warn(att.name, "static_routes", "R65", "static routes are ignored by BGP tunnels",
                   "remove static_routes, or set routing: STATIC")
        if isinstance(att, VirtualCircuitAttachment):
            address = bgp.customer_ip.split("/")[0]
            other = customer_ips.setdefault(address, att.name)
            if other != att.name:  # R53
                r.error(att.name, "bgp.customer_ip", "R53", f"customer address {address} is already used by "
                        f"{other}", "give each VC its own customer-side peering address")
        if bgp.customer_asn == cfg.drg.asn:  # R52
            r.error(att.name, "bgp.customer_asn", "R52", f"customer ASN {bgp.customer_asn} equals the DRG's "
                    "ASN: the session is eBGP", "use the on-premises router's own ASN")
        if bgp.hold_time == 0 or not 18 <= bgp.hold_time <= 180:  # R55
            r.warn(att.name, "bgp.hold_time", "R55", f"hold time {bgp.hold_time} s is outside OCI's "
                   "supported 18-180 s", "use OCI's default 30")
        if bgp.connect in ("passive", "both"):
            other = accepting.setdefault(bgp.peer, att.name)
            if other != att.name:
                r.error(att.name, "bgp.peer", "sockets", f"{att.name} and {other} both accept connections "
                        f"from {bgp.peer}: an incoming connection could not be matched to its session",
                        "give each session its own peer address (e.g. 127.0.0.2, 127.0.0.3)")
    sockets = {"speaker.listen": cfg.speaker.listen, "api.listen": cfg.api.listen}
    if cfg.events.mqtt == "embedded" or cfg.events.mqtt is None:
        sockets["events.embedded_listen"] = cfg.events.embedded_listen
    seen: dict[tuple[str, int], str] = {}
    for name, value in sockets.items():
        first = seen.setdefault(split_host_port(value), name)
        if first != name:
            section, fld = name.split(".")
            r.error(section, fld, "sockets", f"{name} {value} is also {first}", f"give {name} another port")


def require_valid(config: DrgConfig, filename: str) -> list[str]:
    """Validate or raise: ConfigError with every error (nothing of the file is used); else the warnings."""
    result = validate(config, filename)
    if result.errors:
        raise ConfigError(result.errors)
    return [w.message for w in result.warnings]


def parse_valid(text: str, filename: str) -> tuple[DrgConfig, list[str]]:
    """Parse and check a DRG file against every OCI rule: ConfigError lists all problems."""
    config = parse_config(text, filename)
    return config, require_valid(config, filename)


def load_valid(path: str | Path) -> tuple[DrgConfig, list[str]]:
    return parse_valid(Path(path).read_text(), str(path))
