"""OCI's rules for IPSec over FastConnect: table separation, system statements, modes (R42), transport-only.

How it works: the checks read the effective configuration (defaults and system objects included), so
a VC or tunnel that uses an OCI default table is checked like one that names its own. A finding on a
statement is reported where the user can fix it: the file's distribution and ``statements[i]``; for a
statement of an OCI default distribution, the file table that imports it (``import_distribution``)
or an attachment that falls back to the default table (``route_table``). R43/R44 apply to tables in
use only (the R44 EMULATOR CHOICE of oci-drg-semantics.md).
"""

from __future__ import annotations

from controlplane.config.effective import AUTOGEN_RT_OTHER, DEFAULT_TABLE, EffAttachment, EffectiveConfig, EffStatement
from controlplane.config.problems import Report
from controlplane.config.schema import AttachmentType, DrgConfig


def statement_site(cfg: DrgConfig, eff: EffectiveConfig, dist: str,
                   stmt: EffStatement) -> tuple[str, str, str]:
    """(object, field, first half of the fix) for a statement of distribution ``dist``."""
    what = stmt.match.describe()
    if any(d.name == dist for d in cfg.distributions):
        fix = f"remove statement priority {stmt.priority} from {dist}"
        return dist, f"statements[{stmt.file_index}]", fix
    for table in cfg.route_tables:
        if table.import_distribution == dist:
            return (table.name, "import_distribution",
                    f"give {table.name} an import distribution without {what} ({dist} is OCI's default)")
    for att in cfg.attachments:
        default = DEFAULT_TABLE[att.type]
        if att.route_table is None and eff.table(default).import_distribution == dist:
            return (att.name, "route_table", f"give {att.name} a route_table whose import distribution has "
                    f"no {what} (OCI's default {default} imports {dist})")
    return dist, f"statements[{stmt.file_index}]", f"define {dist} in the file without {what}"


def check_transport_only(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    """R43 preconditions and R44 invariants for every VC with transport_only: true."""
    in_use = {a.route_table for a in eff.attachments}
    for vc in eff.attachments:
        if vc.type != AttachmentType.VIRTUAL_CIRCUIT or not vc.transport_only:
            continue
        off = f"set {vc.name} transport_only: false"
        vt = eff.find_table(vc.route_table)
        if vt is None:
            continue
        for route in vt.static_routes:  # R44.2
            r.error(vt.name, f"static_routes[{route.file_index}]", "R44", f"static rule {route.destination} "
                    f"in {vt.name}, the table of transport-only {vc.name}",
                    f"remove static route {route.destination} from {vt.name}, or {off}")
        default = eff.find_table(AUTOGEN_RT_OTHER)
        if default is not None and default.name != vt.name and default.name in in_use:  # R43.1
            for route in default.static_routes:
                r.error(default.name, f"static_routes[{route.file_index}]", "R43", f"static rule "
                        f"{route.destination} in {default.name}, the default table for VC attachments",
                        f"remove static route {route.destination} from {default.name}, or {off}")
        vd = eff.find_distribution(vt.import_distribution)
        for stmt in vd.statements if vd is not None else ():  # R43.2, R44.3
            if stmt.system or vd is None:
                continue
            obj, fld, fix = statement_site(cfg, eff, vd.name, stmt)
            if r.once(obj, fld):
                r.error(obj, fld, "R44", f"{stmt.match.describe()} in {vd.name}: {vt.name}, the table of "
                        f"transport-only {vc.name}, may import only from its loopbacks", f"{fix}, or {off}")
        for table in eff.route_tables:  # R44.4, tables in use only (EMULATOR CHOICE); for an RPC's, R106
            if table.name not in in_use or table.origin == "system" or table.name == vt.name:
                continue
            dist = eff.find_distribution(table.import_distribution)
            if dist is None or (vd is not None and dist.name == vd.name):
                continue
            for stmt in dist.statements:
                if stmt.system or not stmt.matches(vc):
                    continue
                obj, fld, fix = statement_site(cfg, eff, dist.name, stmt)
                rpcs = [a.name for a in eff.attachments_using(table.name)
                        if a.type == AttachmentType.REMOTE_PEERING_CONNECTION]
                rule, why = ("R106", f" (an RPC table: {table.name} is used by {', '.join(rpcs)})") if rpcs \
                    else ("R44", "")
                if r.once(obj, fld):
                    r.error(obj, fld, rule, f"{stmt.match.describe()} imports routes from {vc.name}, which "
                            f"is transport-only{why}", f"{fix}, or {off}")


def check_ipsec_over_fastconnect(cfg: DrgConfig, eff: EffectiveConfig, r: Report) -> None:
    """R40 one headend per tunnel, R41 table separation, R45 system statements, R40 headend export."""
    headends: dict[str, str] = {}
    for tun in eff.attachments:
        if tun.type != AttachmentType.IPSEC_TUNNEL or tun.transport_attachment is None:
            continue
        if tun.oracle_tunnel_ip is not None:
            other = headends.setdefault(tun.oracle_tunnel_ip, tun.name)
            if other != tun.name:
                r.error(tun.name, "oracle_tunnel_ip", "R40", f"headend {tun.oracle_tunnel_ip} is already the "
                        f"headend of {other}", "give each tunnel its own oracle_tunnel_ip")
        vc = eff.find_attachment(tun.transport_attachment)
        if vc is not None and vc.type == AttachmentType.VIRTUAL_CIRCUIT:
            _separate_tables(cfg, eff, r, tun, vc)
    _redundant_modes(eff, r)
    for vc in eff.attachments:
        if vc.type == AttachmentType.VIRTUAL_CIRCUIT and eff.tunnels_over(vc.name):
            _carrier_vc(cfg, eff, r, vc)


def _separate_tables(cfg: DrgConfig, eff: EffectiveConfig, r: Report, tun: EffAttachment,
                     vc: EffAttachment) -> None:
    """R41: a tunnel and the VC it rides on use separate tables that do not import each other."""
    tt, vt = eff.find_table(tun.route_table), eff.find_table(vc.route_table)
    if tt is None or vt is None:
        return
    if tt.name == vt.name:
        if r.once(tun.name, "route_table"):
            r.error(tun.name, "route_table", "R41", f"{tun.name} and {vc.name} share route table "
                    f"{tt.name}: IPSec over FastConnect needs separate tables",
                    f"give {tun.name} a route_table of its own (e.g. one importing only VCN routes)")
        return
    td, vd = eff.find_distribution(tt.import_distribution), eff.find_distribution(vt.import_distribution)
    if td is not None and vd is not None and td.name == vd.name:
        obj, fld = (tt.name, "import_distribution") if tt.origin == "file" else (tun.name, "route_table")
        if r.once(obj, fld):
            r.error(obj, fld, "R41", f"{tt.name} (tunnel {tun.name}) and {vt.name} ({vc.name}) share the "
                    f"import distribution {td.name}", f"give {tt.name} an import distribution of its own")
        return
    for stmt in td.statements if td is not None else ():
        if td is not None and not stmt.system and stmt.matches(vc):
            obj, fld, fix = statement_site(cfg, eff, td.name, stmt)
            if r.once(obj, fld):
                r.error(obj, fld, "R41", f"{stmt.match.describe()} imports routes from {vc.name} into "
                        f"{tt.name}, the table of tunnel {tun.name}", fix)
    for stmt in vd.statements if vd is not None else ():
        if vd is not None and not stmt.system and stmt.matches(tun):
            obj, fld, fix = statement_site(cfg, eff, vd.name, stmt)
            if r.once(obj, fld):
                r.error(obj, fld, "R41", f"{stmt.match.describe()} imports routes from tunnel {tun.name} "
                        f"into {vt.name}, the table of {vc.name}", fix)


def _carrier_vc(cfg: DrgConfig, eff: EffectiveConfig, r: Report, vc: EffAttachment) -> None:
    """A VC that carries tunnels: it exports the headends (R40), no VCN uses its table (R5, R50), and its
    table's import distribution holds the system loopback statements at the top priorities (R45)."""
    if not vc.export:  # R40: the headends are advertised over the VC
        r.warn(vc.name, "export_distribution", "R40", f"{vc.name} advertises nothing, so on-premises "
               "never learns the tunnel headends and the tunnels cannot come up (they stay DOWN)", "set "
               "export_distribution: default")
    for user in eff.attachments_using(vc.route_table):  # R5, R50: a VCN never routes to a loopback
        if user.type == AttachmentType.VCN:
            r.error(user.name, "route_table", "R5", f"{user.name} uses {vc.route_table}, the table of "
                    f"{vc.name}, which holds its tunnel headends (R45): a VCN may not route to a loopback "
                    "(R5, R50)", f"give {user.name} a route_table of its own")
    vt = eff.find_table(vc.route_table)
    if vt is None:
        return
    vd = eff.find_distribution(vt.import_distribution)
    if vt.import_distribution is None:
        obj, fld = (vt.name, "import_distribution") if vt.origin == "file" else (vc.name, "route_table")
        r.error(obj, fld, "R45", f"{vt.name}, the table of {vc.name}, has no import distribution to hold "
                "the system loopback statements", f"set import_distribution of {vt.name} (an empty "
                "distribution is enough: the emulator adds the loopback statements)")
    elif vd is not None:
        system = [s.priority for s in vd.statements if s.system]
        low = min(system, default=65536)
        for stmt in vd.statements:
            if not stmt.system and stmt.priority >= low and stmt.file_index is not None:
                obj, fld, _ = statement_site(cfg, eff, vd.name, stmt)
                r.error(obj, fld, "R45", f"priority {stmt.priority} is reserved in {vd.name} for the "
                        f"system loopback statements ({low}-65535)", f"use a priority below {low} for "
                        "this statement")


def _redundant_modes(eff: EffectiveConfig, r: Report) -> None:
    """R42: redundant VCs carrying tunnels to the same CPE use the same mode."""
    by_cpe: dict[str, list[EffAttachment]] = {}
    for tun in eff.attachments:
        vc = eff.find_attachment(tun.transport_attachment or "")
        if tun.type == AttachmentType.IPSEC_TUNNEL and tun.cpe_ip is not None and vc is not None \
                and vc.type == AttachmentType.VIRTUAL_CIRCUIT:
            vcs = by_cpe.setdefault(tun.cpe_ip, [])
            if vc not in vcs:
                vcs.append(vc)
    for cpe, vcs in by_cpe.items():
        first = vcs[0]
        for vc in vcs[1:]:
            if vc.transport_only != first.transport_only and r.once(vc.name, "transport_only"):
                def mode(a: EffAttachment) -> str:
                    return "IPSec over FastConnect traffic only" if a.transport_only else "All traffic"
                r.error(vc.name, "transport_only", "R42", f"{vc.name} ({mode(vc)}) and {first.name} "
                        f"({mode(first)}) both carry tunnels to CPE {cpe}: redundant VCs must use the same mode",
                        f"set transport_only: {str(first.transport_only).lower()} on {vc.name}, or change "
                        f"{first.name} to match")
