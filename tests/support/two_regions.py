"""Worked example 2 of oci-drg-transit.md section 9 written out: every table of both DRGs and what each
FastConnect edge receives, as the offline mode and the running lab of examples/two-regions.yaml must
show them. A rule is (destination, next hop, provenance, AS path, network distance, isConflict);
every rule of the example is DYNAMIC.
"""

from __future__ import annotations

from typing import Any

ONPREM = "172.20.0.0/16"
Row = tuple[str, str, str, list[int], int, bool]

# Section 9 lists the tables in use; OCI's default tables of drg-a exist too (used by no attachment).
TABLES: dict[str, dict[str, list[Row]]] = {
    "drg-a": {
        "rt-a-vcn": [("10.20.1.0/24", "att-a-rpc", "VCN", [], 1, False),
                     (ONPREM, "att-a-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)],
        "rt-a-vc": [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False),
                    ("10.20.1.0/24", "att-a-rpc", "VCN", [], 1, False)],
        "rt-a-rpc": [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False),
                     (ONPREM, "att-a-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)],
        "autogen-rt-vcn": [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False),
                           ("10.20.1.0/24", "att-a-rpc", "VCN", [], 1, False),
                           (ONPREM, "att-a-vc", "VIRTUAL_CIRCUIT", [65001], 0, False)],
        "autogen-rt-other": [("10.10.1.0/24", "att-a-vcn", "VCN", [], 0, False)],
    },
    "drg-b": {
        "autogen-rt-vcn": [("10.10.1.0/24", "att-b-rpc", "VCN", [], 1, False),
                           ("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False),
                           (ONPREM, "att-b-vc", "VIRTUAL_CIRCUIT", [65001], 0, False),  # R102 step 3: VC > RPC
                           (ONPREM, "att-b-rpc", "VIRTUAL_CIRCUIT", [65001], 1, True)],
        "autogen-rt-other": [("10.20.1.0/24", "att-b-vcn", "VCN", [], 0, False)],
    },
}

USED_BY = {("drg-a", "rt-a-vcn"): ["att-a-vcn"], ("drg-a", "rt-a-vc"): ["att-a-vc"],
           ("drg-a", "rt-a-rpc"): ["att-a-rpc"], ("drg-b", "autogen-rt-vcn"): ["att-b-vcn"],
           ("drg-b", "autogen-rt-other"): ["att-b-vc", "att-b-rpc"]}

# What each edge receives (prefix -> (AS path, next hop)): R36, R107 on att-a-vc; R96 on att-b-vc.
EDGE_A = {"10.10.1.0/24": ([31898], "192.168.100.1"), "10.20.1.0/24": ([31898], "192.168.100.1")}
EDGE_B = {"10.20.1.0/24": ([31898], "192.168.101.1")}


def rows(doc: dict[str, Any]) -> dict[str, dict[str, list[Row]]]:
    """A multi-DRG route dump ({"drgs": [...]}) as {drg: {table: rows}}."""
    return {d["drg"]: {t["name"]: [(r["destination"], r["nextHop"], r["routeProvenance"], r["asPath"],
                                    r.get("networkDistance", 0), r["isConflict"]) for r in t["rules"]]
                       for t in d["routeTables"]} for d in doc["drgs"]}


def used_by(doc: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    return {(d["drg"], t["name"]): t["attachments"] for d in doc["drgs"] for t in d["routeTables"]
            if t["attachments"]}
