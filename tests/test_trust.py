"""Where the emulator used to disagree with OCI (issue 9): each test fails on the code before the fix.

Headend scope (R40, R50, R5), sessions that are not Established (RFC 4271 Adj-RIB-Out), export none on
a VC that carries tunnels (R10, R40), redundant VC modes (R42), own-AS loops in the offline mode
(RFC 4271 s9.1.2). The daemon-level and real-router checks are in test_e2e_lab.py and
test_lab_routers.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from controlplane.config.validate import validate
from controlplane.engine.drgs import engine_from_files
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4
from tests.support.factory import (
    config,
    dist,
    drg,
    engine,
    example,
    keys,
    rows,
    table,
    tunnel_att,
    vc_att,
    vcn,
    vcn_att,
)
from tests.support.paths import EXAMPLES

VCNS = [vcn("n1", "10.1.0.0/24")]


def two_vcs() -> dict[str, Any]:
    """All Traffic vc1 carries t1; vc2 uses a table that imports MATCH_ALL (the issue's first case)."""
    return drg([vcn_att("v1", "n1", "rt-vcn"), vc_att("vc1", 0, "rt-vc1"), vc_att("vc2", 1, "rt-vc2"),
                tunnel_att("t1", 1, "vc1", "rt-tun")],
               [table("rt-vcn", "rd-vcn"), table("rt-vc1", "rd-vc1"), table("rt-vc2", "rd-all"),
                table("rt-tun", "rd-tun")],
               [dist("rd-vcn", "IPSEC_TUNNEL", "VIRTUAL_CIRCUIT"), dist("rd-vc1", "VCN"), dist("rd-all", "all"),
                dist("rd-tun", "VCN")], VCNS)


def up(e: RouteEngine, *sessions: str) -> None:
    e.set_session_established("vc1", True)
    e.announce("vc1", AFI_IPV4, keys("192.168.200.1/32"), [65001])
    for name in sessions:
        e.set_session_established(name, True)


def test_r40_r50_a_headend_is_not_advertised_over_another_vc() -> None:
    raw = two_vcs()
    result = validate(config(raw))
    assert (result.ok, result.errors, result.warnings) == (True, [], [])
    e = engine(raw)
    up(e, "vc2")
    assert e.tunnel_state("t1") == (True, None)
    assert [r[1] for r in rows(e, "rt-vc1") if r[3] == "LOOPBACK"] == ["t1-lb"]
    assert not any(r[3] == "LOOPBACK" for r in rows(e, "rt-vc2"))
    assert "172.16.255.1/32" in [r["prefix"] for r in e.advertised("vc1")["routes"]]
    assert [r["prefix"] for r in e.advertised("vc2")["routes"]] == ["10.1.0.0/24"]


def test_r40_a_packet_to_the_headend_cannot_enter_on_another_vc() -> None:
    e = engine(two_vcs())
    up(e, "vc2")
    walk = e.trace("vc2", "192.168.200.1", "172.16.255.1", inner_src="172.20.10.10", inner_dst="10.1.0.10")
    assert walk["result"] == "DROPPED" and "DECRYPT" not in [h["action"] for h in walk["hops"]]
    # over its own VC the same packet is decrypted and delivered
    walk = e.trace("vc1", "192.168.200.1", "172.16.255.1", inner_src="172.20.10.10", inner_dst="10.1.0.10")
    assert walk["result"] == "DELIVERED" and [h["action"] for h in walk["hops"]][:2] == ["FORWARD", "DECRYPT"]


def test_r40_shared_vc_table_trace_from_the_other_vc_drops_with_the_rule() -> None:
    """Two VCs sharing one table: the table holds vc1's headend, but vc2 may not route to it."""
    raw = two_vcs()
    raw["attachments"][2]["route_table"] = "rt-vc1"
    e = engine(raw)
    up(e, "vc2")
    walk = e.trace("vc2", "192.168.200.1", "172.16.255.1")
    assert walk["result"] == "DROPPED"
    assert "reachable only over vc1" in walk["reason"] and "R40" in walk["reason"]
    assert [r["prefix"] for r in e.advertised("vc2")["routes"]] == ["10.1.0.0/24"]


def test_r5_r50_a_vcn_sharing_match_all_with_an_internet_tunnel_never_routes_to_a_loopback() -> None:
    """The issue's second case: VCN and internet tunnel share a MATCH_ALL table."""
    raw = drg([vcn_att("v1", "n1", "rt-shared"), vc_att("vc1", 0, "rt-vc1"), tunnel_att("t1", 1, "vc1", "rt-tun"),
               tunnel_att("t4", 4, None, "rt-shared", cpe="203.0.113.9")],
              [table("rt-shared", "rd-all"), table("rt-vc1", "rd-vc1"), table("rt-tun", "rd-tun")],
              [dist("rd-all", "all"), dist("rd-vc1", "VCN"), dist("rd-tun", "VCN")], VCNS)
    result = validate(config(raw))
    assert (result.ok, result.errors, result.warnings) == (True, [], [])
    e = engine(raw)
    up(e, "t4")
    # The VCN and the VC's CPE route only: no loopback headend (172.16.255.x) of t1.
    assert [r[:4] for r in rows(e, "rt-shared")] == [("10.1.0.0/24", "v1", "DYNAMIC", "VCN"),
                                                    ("192.168.200.1/32", "vc1", "DYNAMIC", "VIRTUAL_CIRCUIT")]
    assert "172.16.255.1/32" not in [r["prefix"] for r in e.advertised("t4")["routes"]]
    walk = e.trace("v1", "10.1.0.10", "172.16.255.1")
    assert walk["result"] == "DROPPED" and walk["hops"][-1]["nextHop"] != "t1-lb"


def test_r5_a_vcn_may_not_use_the_table_of_a_vc_that_carries_tunnels() -> None:
    raw = two_vcs()
    raw["attachments"][0]["route_table"] = "rt-vc1"
    found = [(p.object, p.field, p.rule) for p in validate(config(raw), "t.yaml").errors]
    assert ("v1", "route_table", "R5") in found


def test_a_session_that_is_not_established_advertises_nothing() -> None:
    e = engine(two_vcs())
    doc = e.advertised("vc2")
    assert doc["state"] == "Idle" and doc["routes"] == []
    assert [r["prefix"] for r in doc["wouldAdvertise"]] == ["10.1.0.0/24"]
    e.set_session_established("vc2", True)
    doc = e.advertised("vc2")
    assert doc["state"] == "Established" and [r["prefix"] for r in doc["routes"]] == ["10.1.0.0/24"]
    assert "wouldAdvertise" not in doc
    e.session_down("vc2")
    assert e.advertised("vc2")["routes"] == []


def test_offline_a_tunnel_whose_vc_is_not_listed_advertises_nothing(tmp_path: Path) -> None:
    learned = tmp_path / "learned.yaml"
    learned.write_text("att-tun1:\n  - {prefix: 172.20.10.0/24, as_path: [65002]}\n")
    e = engine_from_files(EXAMPLES / "transport-mode.yaml", learned)
    assert e.tunnel_state("att-tun1")[0] is False
    for name in ("att-vc1", "att-tun1", "att-tun2"):
        assert e.advertised(name)["routes"] == [], name
        assert e.advertised(name)["state"] == "Idle"


def test_offline_routes_holding_the_drg_asn_are_not_installed(tmp_path: Path) -> None:
    """RFC 4271 s9.1.2 in the offline mode: an echoed headend (path 65001 31898) is a loop."""
    learned = tmp_path / "learned.yaml"
    learned.write_text("att-vc1:\n  - {prefix: 192.168.200.1/32, as_path: [65001]}\n"
                       "  - {prefix: 172.16.255.1/32, as_path: [65001, 31898]}\n"
                       "  - {prefix: 172.16.255.2/32, as_path: [65001, 31898]}\n")
    e = engine_from_files(EXAMPLES / "transport-mode.yaml", learned)
    assert [r[:2] for r in rows(e, "att-vc1-lb-rt")] == [("192.168.200.1/32", "att-vc1")]
    assert not any(r[1] == "att-vc1" and r[0].startswith("172.16.255.") for r in rows(e, "autogen-rt-vcn"))


def test_r10_r40_export_none_on_a_transport_vc_keeps_its_tunnels_down() -> None:
    raw = example("transport-mode")
    raw["attachments"][1]["export_distribution"] = "none"
    result = validate(config(raw))
    assert result.ok and [(w.object, w.rule) for w in result.warnings] == [("att-vc1", "R40")]
    e = engine(raw)
    e.set_session_established("att-vc1", True)
    e.announce("att-vc1", AFI_IPV4, keys("192.168.200.1/32"), [65001])
    up_state, reason = e.tunnel_state("att-tun1")
    assert up_state is False and reason is not None
    assert "export_distribution none" in reason and "R40" in reason
    assert e.trace("att-vcn", "10.10.1.10", "172.20.10.10")["result"] == "DROPPED"  # nothing learned
    walk = e.trace("att-vc1", "192.168.200.1", "172.16.255.1", inner_src="172.20.10.10", inner_dst="10.10.1.10")
    assert walk["result"] == "DROPPED" and "export_distribution none" in walk["reason"]
    changes = e.refresh()
    assert [(t.tunnel, t.up) for t in changes.tunnels] == [("att-tun1", False), ("att-tun2", False)]


def test_r42_redundant_vcs_to_one_cpe_use_the_same_mode() -> None:
    raw = example("transport-mode")
    vc2 = vc_att("att-vc2", 5, "rt-vc2", transport_only=False)
    tun3 = tunnel_att("att-tun3", 3, "att-vc2", "rt-ipsec")
    raw["attachments"] += [vc2, tun3]
    raw["route_tables"].append(table("rt-vc2", "rd-vc2"))
    raw["distributions"].append(dist("rd-vc2"))
    found = [p for p in validate(config(raw), "t.yaml").errors if p.rule == "R42"]
    assert [(p.object, p.field) for p in found] == [("att-vc2", "transport_only")]
    assert "att-vc1" in found[0].message and "transport_only: true" in found[0].fix
    raw["attachments"][-2]["transport_only"] = True
    assert not [p for p in validate(config(raw), "t.yaml").errors if p.rule == "R42"]
