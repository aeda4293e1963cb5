"""The OCI REST API layer without BGP peers: errors, paging, ids, retry tokens and the write-back.

A daemon runs on free loopback ports with no on-prem peers (its sessions stay down, which does not
matter here) and is driven with plain HTTP, unsigned or with a made-up signature header, so each
rule of the layer is checked directly: OCI's error body and never a 5xx, ``opc-request-id``,
opaque page tokens, ids that survive a re-read of the file, ``opc-retry-token``, and the atomic
write-back with its ``.bak``.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane import Drg
from controlplane.config.load import parse_config
from controlplane.daemon import Daemon
from controlplane.oci import views as oci_models
from controlplane.oci.http import parse_key_id
from controlplane.oci.writeback import render, write_atomic
from tests.support.lab import lab_file
from tests.support.oci import Api, running_api

pytestmark = pytest.mark.timeout(60)

BASE = "/20160918"
RT_IPSEC = "ocid1.drgroutetable.emu.drg1.rt-ipsec"
ATT_VCN = "ocid1.drgattachment.emu.drg1.att-vcn"
SIGNATURE = ('Signature algorithm="rsa-sha256",headers="date (request-target) host",'
             'keyId="ocid1.tenancy.oc1..t/ocid1.user.oc1..u/4f:4f",signature="c2ln",version="1"')


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    async with running_api(lab_file("transport-mode", tmp_path)) as client:
        yield client


def add_body(*destinations: str) -> dict[str, Any]:
    return {"routeRules": [{"destinationType": "CIDR_BLOCK", "destination": d, "nextHopDrgAttachmentId": ATT_VCN}
                           for d in destinations]}


async def test_errors_have_oci_bodies_and_never_a_retryable_status(api: Api, monkeypatch: pytest.MonkeyPatch,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    status, body, headers = await api.request("GET", f"{BASE}/vcns?compartmentId=x", headers={"opc-request-id": "R1"})
    assert (status, body["code"], headers["opc-request-id"]) == (404, "NotAuthorizedOrNotFound", "R1")
    status, body, headers = await api.request("DELETE", f"{BASE}/drgRouteTables/{RT_IPSEC}")  # known path, wrong verb
    assert (status, body["code"]) == (404, "NotAuthorizedOrNotFound") and len(headers["opc-request-id"]) == 32
    status, body, _ = await api.request("GET", "/n/namespace/b/bucket")  # another service entirely
    assert (status, body["code"]) == (404, "NotAuthorizedOrNotFound")
    status, body, _ = await api.request("GET", f"{BASE}/drgs")
    assert (status, body["code"]) == (400, "MissingParameter")
    for query in ("limit=0", "limit=x", "page=bm90LWEtdG9rZW4", "routeType=BOTH"):
        status, body, _ = await api.request("GET", f"{BASE}/drgRouteTables/{RT_IPSEC}/drgRouteRules?{query}")
        assert (status, body["code"]) == (400, "InvalidParameter"), query
    status, body, _ = await api.request("POST", f"{BASE}/drgRouteTables/{RT_IPSEC}/actions/addDrgRouteRules",
                                        "{not json")
    assert (status, body["code"]) == (400, "InvalidParameter")
    status, body, _ = await api.request("POST", f"{BASE}/drgRouteTables/{RT_IPSEC}/actions/addDrgRouteRules", {})
    assert (status, body["code"]) == (400, "MissingParameter")

    # An unexpected exception inside a handler: logged, answered 400 (a 5xx would be retried in a loop).
    def broken(view: oci_models.View) -> dict[str, Any]:
        raise RuntimeError("boom")

    monkeypatch.setattr(oci_models, "drg_json", broken)
    with caplog.at_level(logging.ERROR, logger="controlplane.oci.api"):
        status, body, _ = await api.request("GET", f"{BASE}/drgs/ocid1.drg.emu.drg1.drg1")
    assert (status, body) == (400, {"code": "InvalidParameter", "message": "RuntimeError: boom"})
    assert any("failed" in r.getMessage() for r in caplog.records)

    # The control API under /v1 keeps its own answers.
    status, body, _ = await api.request("GET", "/v1/status")
    assert status == 200 and body["drg"] == "drg1"
    status, _, _ = await api.request("GET", "/v1/nope")
    assert status == 404


async def test_signed_requests_are_accepted_and_their_key_id_logged(api: Api, caplog: pytest.LogCaptureFixture) -> None:
    assert parse_key_id(SIGNATURE) == "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/4f:4f"
    assert parse_key_id(None) is None and parse_key_id("Bearer x") is None
    with caplog.at_level(logging.INFO, logger="controlplane.oci.api"):
        status, body, headers = await api.request("GET", f"{BASE}/drgs?compartmentId=x",
                                                  headers={"authorization": SIGNATURE})
    assert status == 200 and [d["id"] for d in body] == ["ocid1.drg.emu.drg1.drg1"]
    assert "etag" not in headers  # lists carry no etag; single resources do
    assert any("ocid1.tenancy.oc1..t/ocid1.user.oc1..u/4f:4f" in r.getMessage() for r in caplog.records)
    status, body, headers = await api.request("GET", f"{BASE}/drgs/ocid1.drg.emu.drg1.drg1")
    assert status == 200 and headers["etag"] == oci_models.etag(body)


async def test_pages_are_opaque_and_complete(api: Api) -> None:
    status, _, _ = await api.request("POST", f"{BASE}/drgRouteTables/{RT_IPSEC}/actions/addDrgRouteRules",
                                     add_body(*(f"10.{n}.0.0/16" for n in range(20, 27))))
    assert status == 200
    status, everything, headers = await api.request("GET", f"{BASE}/drgRouteTables/{RT_IPSEC}/drgRouteRules")
    assert status == 200 and "opc-next-page" not in headers
    for limit in (1, 3, 7, 100):
        ids: list[str] = []
        query = f"limit={limit}"
        while True:
            status, page, headers = await api.request("GET", f"{BASE}/drgRouteTables/{RT_IPSEC}/drgRouteRules?{query}")
            assert status == 200 and 0 < len(page) <= limit
            ids.extend(r["id"] for r in page)
            if "opc-next-page" not in headers:
                break
            query = f"limit={limit}&page={headers['opc-next-page']}"
        assert ids == [r["id"] for r in everything], limit
    # The VCN's subnet (imported, dynamic) and the seven static rules; the BGP sessions are down here.
    assert [r["routeType"] for r in everything] == ["DYNAMIC"] + ["STATIC"] * 7
    assert len({r["id"] for r in everything}) == 8


async def test_retry_token_gives_the_first_answer_and_refuses_another_body(api: Api) -> None:
    path = f"{BASE}/drgRouteTables/{RT_IPSEC}/actions/addDrgRouteRules"
    first = await api.request("POST", path, add_body("10.20.0.0/16"), {"opc-retry-token": "t1"})
    again = await api.request("POST", path, add_body("10.20.0.0/16"), {"opc-retry-token": "t1"})
    assert first[0] == again[0] == 200 and first[1] == again[1]
    status, body, _ = await api.request("POST", path, add_body("10.21.0.0/16"), {"opc-retry-token": "t1"})
    assert (status, body["code"]) == (400, "InvalidParameter") and "t1" in body["message"]
    statics = [r for r in api.drg.route_table("rt-ipsec")["rules"] if r["routeType"] == "STATIC"]
    assert [r["destination"] for r in statics] == ["10.20.0.0/16"]
    # Without a token the same add is a second rule for the CIDR: R14 refuses it.
    status, body, _ = await api.request("POST", path, add_body("10.20.0.0/16"))
    assert status == 400 and body["message"].startswith("R14: a second static rule for 10.20.0.0/16")


def view_of(text: str) -> oci_models.View:
    daemon = Daemon(parse_config(text), None, control=False)
    return oci_models.View(daemon.config, daemon.effective, daemon.engine, daemon.speaker, 0.0)


def test_ids_are_stable_across_rereads_and_explicit_ids_win(tmp_path: Path) -> None:
    def edit(doc: dict[str, Any]) -> None:
        rt = next(t for t in doc["route_tables"] if t["name"] == "rt-ipsec")
        rt["static_routes"] = [{"destination": "10.20.0.0/16", "next_hop": "att-vcn"},
                               {"destination": "10.21.0.0/16", "next_hop": "att-vcn"}]

    text = lab_file("transport-mode", tmp_path, edit).read_text()
    ids = oci_models.static_rule_ids(view_of(text), "rt-ipsec")
    assert ids == oci_models.static_rule_ids(view_of(text), "rt-ipsec")
    assert ids["10.20.0.0/16"] == oci_models.derived_static_rule_id("drg1", "rt-ipsec", "10.20.0.0/16")
    assert ids["10.20.0.0/16"].startswith("ocid1.drgrouterule.emu.drg1.rt-ipsec.s") and len(set(ids.values())) == 2
    statements = oci_models.statement_ids(view_of(text), "rd-vc")
    assert statements == oci_models.statement_ids(view_of(text), "rd-vc") and set(statements) == {65535, 65534}

    # A rule whose destination was updated keeps its old id explicitly; a new rule for the old
    # destination would derive that same id, and is salted instead: ids stay unique and stable.
    doc = yaml.safe_load(text)
    rt = next(t for t in doc["route_tables"] if t["name"] == "rt-ipsec")
    rt["static_routes"] = [{"destination": "10.22.0.0/16", "next_hop": "att-vcn", "id": ids["10.20.0.0/16"]},
                           {"destination": "10.20.0.0/16", "next_hop": "att-vcn"}]
    moved = oci_models.static_rule_ids(view_of(yaml.safe_dump(doc)), "rt-ipsec")
    assert moved["10.22.0.0/16"] == ids["10.20.0.0/16"]
    assert moved["10.20.0.0/16"] == oci_models.derived_static_rule_id("drg1", "rt-ipsec", "10.20.0.0/16", 1)
    assert moved == oci_models.static_rule_ids(view_of(yaml.safe_dump(doc)), "rt-ipsec")
    # The same explicit id written twice by hand: the first keeps it, the second derives its own.
    rt["static_routes"][1]["id"] = ids["10.20.0.0/16"]
    twice = oci_models.static_rule_ids(view_of(yaml.safe_dump(doc)), "rt-ipsec")
    assert twice["10.22.0.0/16"] == ids["10.20.0.0/16"] and len(set(twice.values())) == 2


def test_write_back_changes_only_the_changed_objects_and_keeps_a_backup(tmp_path: Path) -> None:
    path = lab_file("transport-mode", tmp_path)
    original = "# my comment\n" + path.read_text()
    path.write_text(original)
    path.chmod(0o640)
    old = parse_config(original)
    rt = next(t for t in old.route_tables if t.name == "rt-ipsec")
    from controlplane.config.schema import StaticRoute

    changed = rt.model_copy(update={"static_routes": [StaticRoute(destination="10.20.0.0/16", next_hop="att-vcn")]})
    new = old.model_copy(update={"route_tables": [changed if t.name == "rt-ipsec" else t for t in old.route_tables]})
    text = render(path, old, new, "AddDrgRouteRules on rt-ipsec through the OCI API")
    # The file is edited, not rewritten: the comment stays, no header, and the only new lines are the rule's.
    added = [line for line in text.splitlines() if line not in original.splitlines()]
    assert text.startswith("# my comment\n") and "Written" not in text
    assert [line.strip() for line in added] == ["static_routes:", "- destination: 10.20.0.0/16", "next_hop: att-vcn"]
    assert [line for line in original.splitlines() if line not in text.splitlines()] == []
    assert parse_config(text).route_tables == new.route_tables

    backup = write_atomic(path, text)
    assert backup.read_text() == original and path.read_text() == text
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(p.name for p in tmp_path.iterdir()) == ["transport-mode.yaml", "transport-mode.yaml.bak"]

    # A file that no longer loads is replaced by the whole running configuration, under a header saying so.
    path.write_text("drg: [this is not\n")
    text = render(path, old, new, "a change")
    assert text.startswith("# Written whole by the DRG emulator after a change: the file on disk did not load")
    assert parse_config(text) == new


async def test_a_daemon_without_a_file_applies_api_changes_in_memory(tmp_path: Path) -> None:
    config = parse_config(lab_file("transport-mode", tmp_path).read_text())
    before = sorted(p.name for p in tmp_path.iterdir())
    drg = Drg(config)
    await drg.start()
    client = Api(drg, None)
    try:
        status, body, _ = await client.request(
            "POST", f"{BASE}/drgRouteTables/{RT_IPSEC}/actions/addDrgRouteRules", add_body("10.20.0.0/16"))
        assert status == 200 and body[0]["routeType"] == "STATIC"
        assert "10.20.0.0/16" in {r["destination"] for r in drg.route_table("rt-ipsec")["rules"]}
    finally:
        await client.session.close()
        await drg.stop()
    assert sorted(p.name for p in tmp_path.iterdir()) == before
