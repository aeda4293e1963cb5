"""Human renderings of the JSON documents of product.md: aligned tables a network engineer reads.

Every command builds its JSON document first (daemon or offline mode, same code); ``--json`` prints
it as is, otherwise one function here turns it into text. The route dump reads like OCI's console
list of route rules: one line per rule, conflicts and ECMP marked.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(h) for h in headers]] + [["-" if c is None else str(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    return "\n".join(lines)


def as_path_text(path: Sequence[Any]) -> str:
    parts = []
    for hop in path:
        if isinstance(hop, list):
            parts.append("{" + ",".join(str(a) for a in hop) + "}")
        else:
            parts.append(str(hop))
    return " ".join(parts) if parts else "-"


def rule_status(rule: dict[str, Any]) -> str:
    if rule.get("isBlackhole"):
        return "BLACKHOLE"
    if rule.get("isConflict"):
        return "conflict"
    if rule.get("isEcmp"):
        return "active (ECMP)"
    return "active"


def routes(doc: dict[str, Any]) -> str:
    """A route dump; a multi-DRG file's (``{"drgs": [...]}``) DRG by DRG."""
    if "drgs" in doc:
        return "".join(f"DRG {item['drg']}\n\n" + _tables(item) for item in doc["drgs"]) or "(no route tables)\n"
    return _tables(doc)


def _tables(doc: dict[str, Any]) -> str:
    out = []
    for rt in doc["routeTables"]:
        ecmp = "on" if rt.get("isEcmpEnabled") else "off"
        attachments = ", ".join(rt.get("attachments") or []) or "none"
        out.append(
            f"Route table {rt['name']}  (import: {rt.get('importDistribution') or 'none'}, ECMP {ecmp}, "
            f"used by: {attachments})"
        )
        rpc = any("networkDistance" in r for r in rt["rules"])  # RPC-learned rules: distance and DRG path (R99)
        rows = [
            (
                r["destination"],
                r["nextHop"],
                r["routeType"],
                r["routeProvenance"],
                as_path_text(r.get("asPath") or []),
                *((r.get("networkDistance", 0), " ".join(r.get("drgPath") or []) or "-") if rpc else ()),
                rule_status(r),
            )
            for r in rt["rules"]
        ]
        if rows:
            extra = ("DIST", "DRG PATH") if rpc else ()
            out.append(table(("DESTINATION", "NEXT HOP", "TYPE", "PROVENANCE", "AS PATH", *extra, "STATUS"), rows))
        else:
            out.append("  (no rules)")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _uptime(seconds: object) -> str:
    if not isinstance(seconds, int | float):
        return "-"
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


def sessions(doc: dict[str, Any]) -> str:
    rows = []
    notes = []
    multi = any("drg" in s for s in doc["sessions"])
    for s in doc["sessions"]:
        rows.append(
            (
                *((s.get("drg"),) if multi else ()),
                s.get("session") or s["attachment"],
                s["neighbor"],
                s.get("socket"),
                s.get("peerAsn"),
                s["state"],
                _uptime(s.get("uptimeSeconds")),
                s.get("prefixesReceived"),
                s.get("prefixesAdvertised"),
                s.get("tunnel") or "",
            )
        )
        if s.get("downReason"):
            notes.append(f"{s['attachment']}: tunnel down: {s['downReason']}")
        if s.get("lastError"):
            notes.append(f"{s['attachment']}: last error: {s['lastError']}")
        notes += _rejected_notes(s)
    headers = ("SESSION", "NEIGHBOR", "SOCKET", "PEER AS", "STATE", "UPTIME", "RCVD", "ADV", "TUNNEL")
    text = table(("DRG",) * multi + headers, rows)
    if notes:
        text += "\n\n" + "\n".join(notes)
    return text + "\n"


_REJECTED: Final = {
    "malformed": "malformed attributes, treated as withdrawn (RFC 7606)",
    "missingAttribute": "a well-known attribute missing, treated as withdrawn (RFC 7606 s3 d)",
    "asZero": "AS 0 in the AS path (RFC 7607)",
    "asSet": "AS_SET or AS_CONFED_SET in the AS path (RFC 9774)",
    "confedSegment": "confederation segments from an external peer (RFC 5065)",
    "firstAs": "the leftmost AS is not the peer's AS (RFC 4271 s6.3)",
    "nextHop": "NEXT_HOP is 0.0.0.0, multicast, class E or one of the DRG's own addresses (RFC 4271 s6.3)",
}


def _rejected_notes(s: dict[str, Any]) -> list[str]:
    """One line per reason routes of the session were not installed, and one for discarded attributes."""
    notes = []
    for reason, count in (s.get("prefixesRejected") or {}).items():
        if not count:
            continue
        why = (f"AS path holds our AS {s.get('localAsn')} (RFC 4271 s9.1.2)" if reason == "asLoop"
               else _REJECTED.get(reason, reason))
        notes.append(f"{s['attachment']}: {count} prefix(es) not installed: {why}")
    discarded = s.get("attributesDiscarded") or {}
    if discarded:
        shown = ", ".join(f"{name} x{count}" for name, count in discarded.items())
        notes.append(f"{s['attachment']}: attributes discarded (RFC 7606): {shown}")
    return notes


def advertised(doc: dict[str, Any]) -> str:
    state = doc.get("state")
    drg = f"{doc['drg']}: " if doc.get("drg") else ""
    head = (f"{drg}Advertised to {doc.get('session') or doc['attachment']} (neighbor {doc.get('neighbor') or '-'}"
            + (f", session {state}" if state else "") + f"): {len(doc['routes'])} routes")
    would = doc.get("wouldAdvertise")
    if would:
        head += (f"\nThe session is not Established, so nothing is sent; once it is, {len(would)} route(s) would be"
                 " (wouldAdvertise): " + ", ".join(r["prefix"] for r in would[:8]) + (" ..." if len(would) > 8 else ""))
    if not doc["routes"]:
        return head + "\n"
    if "provenance" in doc["routes"][0]:  # over an RPC (R97-R99, R103)
        rpc_rows = [(r["prefix"], r["provenance"], as_path_text(r.get("asPath") or []), r["networkDistance"],
                     " ".join(r["drgPath"])) for r in doc["routes"]]
        return head + "\n" + table(("PREFIX", "PROVENANCE", "AS PATH", "DISTANCE", "DRG PATH"), rpc_rows) + "\n"
    rows = [(r["prefix"], as_path_text(r.get("asPath") or []), r.get("nextHop")) for r in doc["routes"]]
    return head + "\n" + table(("PREFIX", "AS PATH", "NEXT HOP"), rows) + "\n"


def offered(doc: dict[str, Any]) -> str:
    imported = ", ".join(doc["importedBy"]) or "no table"
    drg = f"{doc['drg']}: " if doc.get("drg") else ""
    head = (f"{drg}Offered by {doc['attachment']} ({doc['type']}, uses {doc['routeTable']}): {len(doc['routes'])} "
            f"routes, imported by {imported}")
    if not doc["routes"]:
        return head + "\n"
    rows = [(r["prefix"], r["provenance"], as_path_text(r.get("asPath") or []), r["origin"]) for r in doc["routes"]]
    return head + "\n" + table(("PREFIX", "PROVENANCE", "AS PATH", "ORIGIN"), rows) + "\n"


def _trace_where(h: dict[str, Any]) -> str:
    """Where a hop happens: a DRG attachment, a VCN's ingress, a subnet's egress, or an appliance (R93)."""
    kind = h.get("kind", "DRG")
    if kind == "APPLIANCE":
        return f"{h['vcn']}: {h['appliance']} ({h['privateIp']})"
    if kind == "VCN":
        return f"{h['vcn']} ingress from {h['attachment']}" if h.get("attachment") else f"{h['vcn']}: {h['subnet']}"
    return str(h["attachment"])


def _trace_row(i: int, h: dict[str, Any]) -> tuple[object, ...]:
    table_ = h.get("routeTable")
    if h.get("kind") == "VCN" and table_ is None and h.get("attachment"):
        table_ = "implicit (R74)"
    rule = h.get("matchedRule")
    if rule is not None and h.get("routeType") == "LOCAL":
        rule += " (local)"
    action = f"{h['action']} {h['verdict']}" if h.get("verdict") else h["action"]
    outer = f"{h['outerSrc']} -> {h['outerDst']}" if h.get("encrypted") else ""
    return i, h.get("kind", "DRG"), _trace_where(h), table_, rule, action, h.get("nextHop"), outer


def trace(doc: dict[str, Any]) -> str:
    """The hops as a table; a DRG column when the walk involves more than one DRG (hops with ``drg``)."""
    rows = [_trace_row(i, h) for i, h in enumerate(doc["hops"], 1)]
    headers: tuple[str, ...] = ("#", "KIND", "WHERE", "ROUTE TABLE", "MATCHED RULE", "ACTION", "NEXT HOP",
                                "ESP OUTER HEADER")
    if any("drg" in h for h in doc["hops"]):
        headers = (*headers[:2], "DRG", *headers[2:])
        rows = [(*row[:2], h.get("drg"), *row[2:]) for row, h in zip(rows, doc["hops"], strict=True)]
    text = table(headers, rows)
    result = doc["result"]
    if doc.get("reasonCode"):
        result += f" ({doc['reasonCode']})"
    if doc.get("reason"):
        result += f": {doc['reason']}"
    return text + f"\n\nResult: {result}\n"


def problems(doc: dict[str, Any]) -> str:
    lines = []
    for e in doc.get("errors", []):
        where = f"{e.get('file')}: " if e.get("file") else ""
        where += f"{e['drg']}: " if e.get("drg") else ""
        field = f".{e['field']}" if e.get("field") else ""
        lines.append(f"{where}{e['object']}{field}: {e['message']} [{e['rule']}]")
        if e.get("fix"):
            lines.append(f"    fix: {e['fix']}")
    for w in doc.get("warnings", []):
        if not isinstance(w, dict):
            lines.append(f"warning: {w}")
            continue
        where = f"{w['object']}.{w['field']}: " if w.get("object") and w.get("field") else ""
        where = (f"{w['drg']}: " if w.get("drg") else "") + where
        rule = f" [{w['rule']}]" if w.get("rule") else ""
        lines.append(f"warning: {where}{w.get('message', '')}{rule}")
        if w.get("fix"):
            lines.append(f"    fix: {w['fix']}")
    return "\n".join(lines) + "\n" if lines else ""
