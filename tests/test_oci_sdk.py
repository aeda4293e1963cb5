"""The real OCI Python SDK (oci 2.189.0, ``VirtualNetworkClient(service_endpoint=...)``) against the
running daemon with ExaBGP peers: every operation, the refusals, and the exact call sequence of
Terraform's ``oci_core_drg_route_table_route_rule`` resource (Create = AddDrgRouteRules, Read =
ListDrgRouteRules over every page matched on the id, Update = UpdateDrgRouteRules with the changed
fields only, Delete = RemoveDrgRouteRules), since the Terraform provider cannot be downloaded here.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import oci
import pytest
import yaml
from oci.core import models as om

from controlplane import Drg
from controlplane.config.load import parse_config
from tests.support.lab import Running, adj_in, all_up
from tests.support.oci import COMPARTMENT, DRG, call, expected_rule, oid, sdk_client, sdk_rule

pytestmark = [pytest.mark.interop, pytest.mark.timeout(240)]

IPSC = oid("ipsecconnection", "cpe-192-168-200-1")
RT_VCN = oid("drgroutetable", "rt-vcn")
RT_IPSEC = oid("drgroutetable", "rt-ipsec")
RD_VCN = oid("drgroutedistribution", "rd-vcn")


async def all_rules(client: oci.core.VirtualNetworkClient, table: str, **kwargs: Any) -> list[Any]:
    result = await call(oci.pagination.list_call_get_all_results, client.list_drg_route_rules, table, **kwargs)
    return list(result.data)


async def service_error(fn: Any, *args: Any, **kwargs: Any) -> oci.exceptions.ServiceError:
    with pytest.raises(oci.exceptions.ServiceError) as info:
        await call(fn, *args, **kwargs)
    return info.value


async def test_sdk_every_read_says_what_the_daemon_says(lab: Running, tmp_path: Path) -> None:
    run = lab
    client = sdk_client(tmp_path, run.api, retries=True)  # the SDK's defaults, as a user's script has them
    routes = run.drg.route_tables()
    sessions = {s["attachment"]: s for s in run.drg.sessions()["sessions"]}
    effective = run.drg.daemon.effective

    drgs = await call(client.list_drgs, COMPARTMENT)
    assert [d.id for d in drgs.data] == [DRG] and drgs.headers["opc-request-id"]
    drg = await call(client.get_drg, DRG)
    assert drg.data.default_drg_route_tables.ipsec_tunnel == oid("drgroutetable", "autogen-rt-other")
    assert drg.headers["etag"]

    attachments = await call(oci.pagination.list_call_get_all_results, client.list_drg_attachments, COMPARTMENT,
                             drg_id=DRG, attachment_type="ALL", limit=1)
    assert [a.id for a in attachments.data] == [a.id for a in effective.attachments]
    for att in attachments.data:
        single = await call(client.get_drg_attachment, att.id)
        assert single.data.drg_route_table_id == att.drg_route_table_id and single.headers["etag"]
    every = await call(oci.pagination.list_call_get_all_results, client.get_all_drg_attachments, DRG, limit=4)
    assert [a.id for a in every.data] == [a.id for a in effective.attachments]
    tunnels_only = await call(client.get_all_drg_attachments, DRG, attachment_type="IPSEC_TUNNEL")
    assert [a.id for a in tunnels_only.data] == [oid("drgattachment", "att-tun1"), oid("drgattachment", "att-tun2")]
    by_table = await call(client.list_drg_attachments, COMPARTMENT, attachment_type="ALL",
                          drg_route_table_id=oid("drgroutetable", "rt-ipsec"))
    assert [a.display_name for a in by_table.data] == ["att-tun1", "att-tun2"]
    vc_att = await call(client.list_drg_attachments, COMPARTMENT, attachment_type="VIRTUAL_CIRCUIT")
    assert vc_att.data[0].network_details.transport_only_mode is True

    tables = await call(oci.pagination.list_call_get_all_results, client.list_drg_route_tables, DRG, limit=2)
    assert [t.id for t in tables.data] == [t["id"] for t in routes["routeTables"]]
    for table in routes["routeTables"]:
        got = await call(client.get_drg_route_table, table["id"])
        assert got.data.is_ecmp_enabled == table["isEcmpEnabled"]
        dist = table["importDistribution"]
        assert got.data.import_drg_route_distribution_id == (oid("drgroutedistribution", dist) if dist else None)
        rules = await all_rules(client, table["id"], limit=1)
        assert [sdk_rule(r) for r in rules] == [expected_rule(r) for r in table["rules"]]
        for kind in ("STATIC", "DYNAMIC"):
            typed = await all_rules(client, table["id"], route_type=kind)
            assert [r.id for r in typed] == [r.id for r in rules if r.route_type == kind]

    dists = await call(client.list_drg_route_distributions, DRG)
    assert [d.id for d in dists.data] == [d.id for d in effective.distributions]
    for dist in effective.distributions:
        got = await call(client.get_drg_route_distribution, dist.id)
        assert got.data.distribution_type == dist.type
        statements = await call(client.list_drg_route_distribution_statements, dist.id)
        assert sorted(s.priority for s in statements.data) == sorted(s.priority for s in dist.statements)
    export = await call(client.list_drg_route_distribution_statements, oid("drgroutedistribution", "autogen-rd-export"))
    assert [(s.priority, s.match_criteria[0].match_type) for s in export.data] == [(1, "MATCH_ALL")]

    vcs = await call(client.list_virtual_circuits, COMPARTMENT)
    assert [v.id for v in vcs.data] == [oid("virtualcircuit", "att-vc1")]
    vc = await call(client.get_virtual_circuit, oid("virtualcircuit", "att-vc1"))
    assert vc.data.bgp_session_state == ("UP" if sessions["att-vc1"]["state"] == "Established" else "DOWN") == "UP"
    assert vc.data.is_transport_mode is True and vc.data.customer_asn == 65001

    connections = await call(client.list_ip_sec_connections, COMPARTMENT, drg_id=DRG)
    assert [c.id for c in connections.data] == [IPSC]
    connection = await call(client.get_ip_sec_connection, IPSC)
    assert connection.data.transport_type == "FASTCONNECT" and connection.data.drg_id == DRG
    tunnels = await call(client.list_ip_sec_connection_tunnels, IPSC)
    assert [(t.display_name, t.status, t.bgp_session_info.bgp_state) for t in tunnels.data] == [
        ("att-tun1", "UP", "UP"), ("att-tun2", "UP", "UP")]
    for name in ("att-tun1", "att-tun2"):
        tunnel = await call(client.get_ip_sec_connection_tunnel, IPSC, oid("ipsectunnel", name))
        assert tunnel.data.status == sessions[name]["tunnel"]
        assert tunnel.data.associated_virtual_circuits == [oid("virtualcircuit", "att-vc1")]
        both = await call(client.list_ip_sec_connection_tunnel_routes, IPSC, oid("ipsectunnel", name))
        received = [(r.prefix, r.as_path) for r in both.data if r.advertiser == "CUSTOMER"]
        sent = [(r.prefix, r.as_path) for r in both.data if r.advertiser == "ORACLE"]
        assert received == [("172.20.10.0/24", [65002])]
        assert sent == [(r["prefix"], r["asPath"]) for r in run.drg.advertised(name)["routes"]]
        assert (len(received), len(sent)) == (sessions[name]["prefixesReceived"], sessions[name]["prefixesAdvertised"])

    for fn, bad in ((client.get_drg, oid("drg", "other")), (client.get_drg_route_table, "ocid1.drgroutetable.oc1..x"),
                    (client.get_virtual_circuit, oid("virtualcircuit", "att-vcn")),
                    (client.list_drg_route_rules, oid("drgroutetable", "missing"))):
        error = await service_error(fn, bad)
        assert (error.status, error.code) == (404, "NotAuthorizedOrNotFound")


async def test_sdk_changes_tables_and_statements_and_refuses_what_oci_refuses(lab: Running, tmp_path: Path) -> None:
    run = lab
    client = sdk_client(tmp_path, run.api)

    # ECMP on rt-vcn with the current etag: both tunnel routes become active (R30).
    table = await call(client.get_drg_route_table, RT_VCN)
    updated = await call(client.update_drg_route_table, RT_VCN, om.UpdateDrgRouteTableDetails(is_ecmp_enabled=True),
                         if_match=table.headers["etag"])
    assert updated.data.is_ecmp_enabled is True and updated.headers["etag"] != table.headers["etag"]
    rules = run.drg.route_table("rt-vcn")["rules"]
    assert [(r["isConflict"], r["isEcmp"]) for r in rules] == [(False, True), (False, True)]
    assert [(r.is_conflict, r.attributes["isEcmp"]) for r in await all_rules(client, RT_VCN)] == [
        (False, "true"), (False, "true")]
    stale = await service_error(client.update_drg_route_table, RT_VCN,
                                om.UpdateDrgRouteTableDetails(is_ecmp_enabled=False), if_match=table.headers["etag"])
    assert (stale.status, stale.code) == (412, "PreconditionFailed")
    assert run.drg.route_table("rt-vcn")["isEcmpEnabled"] is True

    # One of OCI's default tables is changed like any other, and lands in the file.
    renamed = await call(client.update_drg_route_table, oid("drgroutetable", "autogen-rt-vcn"),
                         om.UpdateDrgRouteTableDetails(display_name="VCN default"))
    assert renamed.data.display_name == "VCN default"

    # Import distribution removed and put back.
    await call(client.remove_import_drg_route_distribution, RT_VCN)
    assert run.drg.route_table("rt-vcn")["rules"] == []
    back = await call(client.update_drg_route_table, RT_VCN,
                      om.UpdateDrgRouteTableDetails(import_drg_route_distribution_id=RD_VCN))
    assert back.data.import_drg_route_distribution_id == RD_VCN
    await run.until(lambda: len(run.drg.route_table("rt-vcn")["rules"]) == 2, 5, "tunnel routes back")

    # Statements: add, change the priority (the id stays), change the match, remove.
    by_id = om.DrgAttachmentIdDrgRouteDistributionMatchCriteria(drg_attachment_id=oid("drgattachment", "att-vcn"))
    added = await call(client.add_drg_route_distribution_statements, RD_VCN,
                       om.AddDrgRouteDistributionStatementsDetails(statements=[
                           om.AddDrgRouteDistributionStatementDetails(action="ACCEPT", priority=20,
                                                                      match_criteria=[by_id])]))
    statement = added.data[0]
    assert (statement.priority, statement.match_criteria[0].drg_attachment_id) == (20, oid("drgattachment", "att-vcn"))
    assert "10.10.1.0/24" in {r["destination"] for r in run.drg.route_table("rt-vcn")["rules"]}
    moved = await call(client.update_drg_route_distribution_statements, RD_VCN,
                       om.UpdateDrgRouteDistributionStatementsDetails(statements=[
                           om.UpdateDrgRouteDistributionStatementDetails(id=statement.id, priority=30)]))
    assert [(s.id, s.priority) for s in moved.data] == [(statement.id, 30)]
    listed = await call(client.list_drg_route_distribution_statements, RD_VCN)
    assert sorted((s.priority, s.id) for s in listed.data)[1] == (30, statement.id)
    retyped = await call(client.update_drg_route_distribution_statements, RD_VCN,
                         om.UpdateDrgRouteDistributionStatementsDetails(statements=[
                             om.UpdateDrgRouteDistributionStatementDetails(
                                 id=statement.id, match_criteria=[
                                     om.DrgAttachmentTypeDrgRouteDistributionMatchCriteria(attachment_type="VCN")])]))
    assert retyped.data[0].match_criteria[0].attachment_type == "VCN"

    # Refusals: 400 with the rule's text, nothing changed.
    before = run.drg.route_tables()
    before_file = run.path.read_text()
    system = (await call(client.list_drg_route_distribution_statements, oid("drgroutedistribution", "rd-vc"))).data
    refusals: list[tuple[Any, tuple[Any, ...], str]] = [
        (client.add_drg_route_distribution_statements,  # R44: MATCH_ALL would import the transport-only VC
         (RD_VCN, om.AddDrgRouteDistributionStatementsDetails(statements=[
             om.AddDrgRouteDistributionStatementDetails(action="ACCEPT", priority=40, match_criteria=[
                 om.DrgAttachmentMatchAllDrgRouteDistributionMatchCriteria()])])), "R44: "),
        (client.add_drg_route_distribution_statements,  # R20: a priority used twice
         (RD_VCN, om.AddDrgRouteDistributionStatementsDetails(statements=[
             om.AddDrgRouteDistributionStatementDetails(action="ACCEPT", priority=10, match_criteria=[
                 om.DrgAttachmentTypeDrgRouteDistributionMatchCriteria(attachment_type="VCN")])])), "R20: "),
        (client.remove_drg_route_distribution_statements,  # R45: system statements are read-only
         (oid("drgroutedistribution", "rd-vc"), om.RemoveDrgRouteDistributionStatementsDetails(
             statement_ids=[system[0].id])), "R45: "),
        (client.add_drg_route_rules,  # R46: the loopback table is the system's
         (oid("drgroutetable", "att-vc1-lb-rt"), om.AddDrgRouteRulesDetails(route_rules=[om.AddDrgRouteRuleDetails(
             destination_type="CIDR_BLOCK", destination="10.40.0.0/16",
             next_hop_drg_attachment_id=oid("drgattachment", "att-vcn"))])), "R46: "),
        (client.add_drg_route_rules,  # R44: no static rule in the transport-only VC's table
         (oid("drgroutetable", "rt-vc"), om.AddDrgRouteRulesDetails(route_rules=[om.AddDrgRouteRuleDetails(
             destination_type="CIDR_BLOCK", destination="10.40.0.0/16",
             next_hop_drg_attachment_id=oid("drgattachment", "att-vcn"))])), "R44: "),
        (client.update_drg_route_rules,  # a dynamic rule cannot be updated
         (RT_VCN, om.UpdateDrgRouteRulesDetails(route_rules=[om.UpdateDrgRouteRuleDetails(
             id=(await all_rules(client, RT_VCN))[0].id, destination="10.50.0.0/16")])), "cannot be updated"),
        (client.add_drg_route_rules,  # a next hop that is not one of this DRG's attachments
         (RT_IPSEC, om.AddDrgRouteRulesDetails(route_rules=[om.AddDrgRouteRuleDetails(
             destination_type="CIDR_BLOCK", destination="10.40.0.0/16",
             next_hop_drg_attachment_id="ocid1.drgattachment.oc1..elsewhere")])), "is not an attachment"),
        (client.add_drg_route_rules,  # host bits set
         (RT_IPSEC, om.AddDrgRouteRulesDetails(route_rules=[om.AddDrgRouteRuleDetails(
             destination_type="CIDR_BLOCK", destination="10.40.0.1/16",
             next_hop_drg_attachment_id=oid("drgattachment", "att-vcn"))])), "host bits set"),
    ]
    for fn, args, text in refusals:
        error = await service_error(fn, *args)
        assert (error.status, error.code) == (400, "InvalidParameter"), error
        assert text in error.message, error.message
    assert run.drg.route_tables() == before
    assert run.path.read_text() == before_file

    # Remove the statement; the file holds exactly the running tables and distributions.
    await call(client.remove_drg_route_distribution_statements, RD_VCN,
               om.RemoveDrgRouteDistributionStatementsDetails(statement_ids=[statement.id]))
    assert [r["destination"] for r in run.drg.route_table("rt-vcn")["rules"]] == ["172.20.10.0/24"] * 2
    saved = parse_config(run.path.read_text())
    config = run.drg.daemon.config
    assert saved.route_tables == config.route_tables and saved.distributions == config.distributions
    autogen = next(t for t in yaml.safe_load(run.path.read_text())["route_tables"] if t["name"] == "autogen-rt-vcn")
    assert autogen["display_name"] == "VCN default"


async def test_terraform_route_rule_call_sequence(lab: Running, tmp_path: Path) -> None:
    """What ``terraform apply`` / ``destroy`` of an ``oci_core_drg_route_table_route_rule`` sends."""
    run = lab
    client = sdk_client(tmp_path, run.api)
    wanted = om.AddDrgRouteRuleDetails(destination_type="CIDR_BLOCK", destination="10.20.0.0/16",
                                       next_hop_drg_attachment_id=oid("drgattachment", "att-vcn"))

    # Create: AddDrgRouteRules with one rule (a retry token, as the Go SDK sends), matched on its fields.
    token = uuid.uuid4().hex
    created = await call(client.add_drg_route_rules, RT_IPSEC, om.AddDrgRouteRulesDetails(route_rules=[wanted]),
                         opc_retry_token=token)
    match = [r for r in created.data if (r.destination_type, r.destination, r.next_hop_drg_attachment_id) ==
             (wanted.destination_type, wanted.destination, wanted.next_hop_drg_attachment_id)]
    assert len(match) == 1
    rule_id = match[0].id
    again = await call(client.add_drg_route_rules, RT_IPSEC, om.AddDrgRouteRulesDetails(route_rules=[wanted]),
                       opc_retry_token=token)
    assert [r.id for r in again.data] == [rule_id]
    assert [r["destination"] for r in run.drg.route_table("rt-ipsec")["rules"]] == ["10.10.1.0/24", "10.20.0.0/16"]

    async def read() -> Any:
        """The provider's Get: ListDrgRouteRules, then every opc-next-page, then the rule with the id."""
        found: list[Any] = []
        page = None
        while True:
            response = await call(client.list_drg_route_rules, RT_IPSEC, limit=1, **({"page": page} if page else {}))
            found.extend(response.data)
            page = response.next_page
            if page is None:
                break
        assert len({r.id for r in found}) == len(found)
        return next((r for r in found if r.id == rule_id), None)

    first = await read()
    assert (first.destination, first.route_type, first.route_provenance) == ("10.20.0.0/16", "STATIC", "STATIC")
    await run.lab["firewall-t1"].wait_for(lambda p: "10.20.0.0/16" in p.received(), 10)

    # Update: only the changed field (destination), the id stays; the peers follow.
    updated = await call(client.update_drg_route_rules, RT_IPSEC, om.UpdateDrgRouteRulesDetails(route_rules=[
        om.UpdateDrgRouteRuleDetails(id=rule_id, destination="10.21.0.0/16")]))
    assert [(r.id, r.destination) for r in updated.data] == [(rule_id, "10.21.0.0/16")]
    second = await read()
    assert (second.destination, second.next_hop_drg_attachment_id) == \
        ("10.21.0.0/16", wanted.next_hop_drg_attachment_id)
    await run.lab["firewall-t2"].wait_for(
        lambda p: "10.21.0.0/16" in p.received() and "10.20.0.0/16" not in p.received(), 10)

    # A restart keeps the id of the updated rule (written to the file), so Terraform still finds it.
    await run.drg.stop()
    run.drg = Drg(run.path)
    await run.drg.start()
    third = await read()
    assert (third.id, third.destination) == (rule_id, "10.21.0.0/16")
    await all_up(run)

    # Delete: RemoveDrgRouteRules; the next read no longer finds it and the peers lose the prefix.
    removed = await call(client.remove_drg_route_rules, RT_IPSEC,
                         om.RemoveDrgRouteRulesDetails(route_rule_ids=[rule_id]))
    assert removed.status == 200 and removed.data is None
    assert await read() is None
    await run.lab["firewall-t1"].wait_for(lambda p: adj_in(run.lab, "firewall-t1") == {
        "10.10.1.0/24": ([31898], "169.254.20.1")}, 30)
