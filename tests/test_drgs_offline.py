"""The offline mode of a multi-DRG file: ``drg routes/advertised/offered --config two-regions.yaml
--learned learned-two-regions.yaml`` builds both engines, replays the learned routes into the DRG of
each attachment and settles the RPCs (R109): worked example 2's tables (oci-drg-transit.md section 9).
A learned file may also give the routes of an RPC whose peer is not in the file (R109)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane.cli import main
from tests.support.factory import example
from tests.support.paths import EXAMPLES
from tests.support.two_regions import EDGE_A, EDGE_B, ONPREM, TABLES, USED_BY, rows, used_by

CONFIG = str(EXAMPLES / "two-regions.yaml")
LEARNED = str(EXAMPLES / "learned-two-regions.yaml")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def doc(capsys: pytest.CaptureFixture[str], *args: str) -> Any:
    code, out, err = run(capsys, *args, "--config", CONFIG, "--learned", LEARNED, "--json")
    assert code == 0, err
    return json.loads(out)


def test_worked_example_2_offline(capsys: pytest.CaptureFixture[str]) -> None:
    routes = doc(capsys, "routes")
    assert rows(routes) == TABLES
    assert used_by(routes) == USED_BY
    rule = routes["drgs"][1]["routeTables"][0]["rules"][0]
    assert (rule["destination"], rule["networkDistance"], rule["drgPath"]) == ("10.10.1.0/24", 1, ["drg-a"])
    for attachment, edge in (("att-a-vc", EDGE_A), ("att-b-vc", EDGE_B)):
        advertised = doc(capsys, "advertised", attachment)
        assert {r["prefix"]: (r["asPath"], r["nextHop"]) for r in advertised["routes"]} == edge
        assert advertised["drg"] == attachment.replace("att-", "drg-").removesuffix("-vc")


def test_drg_selects_one_drg_and_names_find_their_drg(capsys: pytest.CaptureFixture[str]) -> None:
    assert rows(doc(capsys, "routes", "--drg", "drg-b")) == {"drg-b": TABLES["drg-b"]}
    assert [d["drg"] for d in doc(capsys, "routes", "autogen-rt-vcn")["drgs"]] == ["drg-a", "drg-b"]
    assert rows(doc(capsys, "routes", "--attachment", "att-b-rpc")) == {
        "drg-b": {"autogen-rt-other": TABLES["drg-b"]["autogen-rt-other"]}}
    assert rows(doc(capsys, "routes", "rt-a-rpc")) == {"drg-a": {"rt-a-rpc": TABLES["drg-a"]["rt-a-rpc"]}}
    offered = doc(capsys, "offered", "att-a-rpc")
    assert (offered["drg"], [r["prefix"] for r in offered["routes"]]) == ("drg-a", ["10.20.1.0/24"])
    code, out, _ = run(capsys, "routes", "--drg", "drg-a", "rt-a-vc", "--config", CONFIG, "--learned", LEARNED)
    assert code == 0 and out.splitlines()[:3] == [
        "DRG drg-a", "", "Route table rt-a-vc  (import: rd-a-vc, ECMP off, used by: att-a-vc)"]
    assert out.splitlines()[3].split() == ["DESTINATION", "NEXT", "HOP", "TYPE", "PROVENANCE", "AS", "PATH", "DIST",
                                           "DRG", "PATH", "STATUS"]


def test_unknown_and_ambiguous_names(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "routes", "--drg", "drg-c", "--config", CONFIG)
    assert code == 1 and "no DRG 'drg-c' in this configuration" in err
    code, _, err = run(capsys, "routes", "rt-a-vc", "--drg", "drg-b", "--config", CONFIG)
    assert code == 1 and "no route table 'rt-a-vc' in drg-b" in err
    code, _, err = run(capsys, "offered", "att-c", "--config", CONFIG)
    assert code == 1 and "no attachment 'att-c'" in err


def test_a_learned_file_gives_the_routes_of_an_external_rpc(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """R109: region A studied alone; drg-b is not emulated and its export is in the learned file,
    with the provenance of each route's origin, its AS path and its network distance (R98, R99)."""
    raw = example("two-regions")
    alone: dict[str, Any] = {**raw["drgs"][0], "speaker": raw["speaker"], "api": raw["api"],
                             "onprem": raw["onprem"][:1]}
    alone["attachments"][2]["peer"] = "external"
    config = tmp_path / "region-a.yaml"
    config.write_text(yaml.safe_dump(alone, sort_keys=False))
    learned = tmp_path / "learned.yaml"
    learned.write_text(yaml.safe_dump({
        "att-a-vc": [{"prefix": ONPREM, "as_path": [65001]}],
        "att-a-rpc": [{"prefix": "10.20.1.0/24", "provenance": "VCN", "as_path": [], "network_distance": 1},
                      {"prefix": "172.21.0.0/16", "provenance": "VIRTUAL_CIRCUIT", "as_path": [65002],
                       "network_distance": 2}]}))
    code, out, err = run(capsys, "routes", "rt-a-vcn", "--config", str(config), "--learned", str(learned), "--json")
    assert code == 0, err
    table = json.loads(out)["routeTables"][0]  # a single-DRG file: the single-DRG document
    assert [(r["destination"], r["nextHop"], r["routeProvenance"], r["asPath"], r.get("networkDistance"))
            for r in table["rules"]] == [("10.20.1.0/24", "att-a-rpc", "VCN", [], 1),
                                         (ONPREM, "att-a-vc", "VIRTUAL_CIRCUIT", [65001], None),
                                         ("172.21.0.0/16", "att-a-rpc", "VIRTUAL_CIRCUIT", [65002], 2)]
    code, out, err = run(capsys, "advertised", "att-a-vc", "--config", str(config), "--learned", str(learned),
                         "--json")
    assert [r["prefix"] for r in json.loads(out)["routes"]] == ["10.10.1.0/24", "10.20.1.0/24"]  # R100: not 172.21


def test_a_learned_file_cannot_replace_an_emulated_peer(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    learned = tmp_path / "learned.yaml"
    learned.write_text(yaml.safe_dump({"att-b-rpc": [{"prefix": "10.99.0.0/16"}],
                                       "att-b-vc": [{"prefix": ONPREM, "provenance": "VCN"}]}))
    code, _, err = run(capsys, "routes", "--config", CONFIG, "--learned", str(learned))
    assert code == 1
    assert "drg: att-b-rpc: att-b-rpc learns its routes from drg-a, a DRG of the same file [R109]" in err
    assert "att-b-vc.[0]: provenance and network_distance describe routes offered over an RPC" in err
    learned.write_text(yaml.safe_dump({"att-c-vc": [{"prefix": ONPREM}]}))
    code, _, err = run(capsys, "routes", "--config", CONFIG, "--learned", str(learned))
    assert code == 1 and "att-c-vc cannot learn routes: no such attachment in any DRG of the file" in err
