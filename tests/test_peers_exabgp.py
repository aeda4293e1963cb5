"""Tests of peers/: ExaBGP peers driven from asyncio, without the DRG emulator.

The interop tests run real ExaBGP processes against each other on loopback (one passive on
127.0.0.3, one connecting from 127.0.0.2, plus a `both` + MD5 pair and a lab built from the
product.md example), on ports picked free per test, and check that stop() leaves no process
(ExaBGP and its bridge) behind. The others check rendering, config mapping and event parsing.
"""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from peers.exabgp import ExaBGPPeer, PeerSpec, Route, is_listening, normalize_attributes, pid_running
from peers.lab import Lab, spec_from_onprem, specs_from_config
from tests.support.ports import free_port

# ------------------------------------------------------------------ helpers


def assert_gone(pids: list[int]) -> None:
    assert pids, "no PIDs recorded"
    alive = [pid for pid in pids if pid_running(pid)]
    assert not alive, f"processes left behind: {alive}"


FULL_ROUTE = Route(
    prefix="192.0.2.0/24",
    next_hop="127.0.0.2",
    as_path=[65001, 64512],
    med=100,
    communities=["65001:100", "31898:200"],
    extended_communities=["target:65001:1"],
    large_communities=["65001:1:2"],
    origin="egp",
    atomic_aggregate=True,
    aggregator="65001:192.0.2.1",
)

PRODUCT_CONFIG: dict[str, Any] = {
    "drg": {"name": "drg1", "asn": 31898},
    "speaker": {"listen": "127.0.0.1:1790"},
    "attachments": [
        {"name": "att-vcn", "type": "VCN"},
        {
            "name": "att-vc1",
            "type": "VIRTUAL_CIRCUIT",
            "bgp": {
                "oracle_ip": "192.168.100.1/30",
                "customer_ip": "192.168.100.2/30",
                "customer_asn": 65001,
                "peer": "127.0.0.2",
                "peer_port": 179,
                "connect": "passive",
                "md5_key": None,
            },
        },
        {
            "name": "att-tun1",
            "type": "IPSEC_TUNNEL",
            "bgp": {
                "oracle_ip": "169.254.20.1/30",
                "customer_ip": "169.254.20.2/30",
                "customer_asn": 65002,
                "peer": "127.0.0.3",
                "connect": "active",
                "peer_port": 1791,
            },
        },
    ],
    "onprem": [
        {"name": "edge", "session": "att-vc1", "announce": [{"prefix": "192.168.200.1/32"}]},
        {
            "name": "firewall-t1",
            "session": "att-tun1",
            "announce": [{"prefix": "172.20.10.0/24", "as_path": [65002]}],
        },
    ],
}


# -------------------------------------------------------- rendering, mapping


def test_route_render_full() -> None:
    assert FULL_ROUTE.render() == (
        "192.0.2.0/24 next-hop 127.0.0.2 origin egp as-path [ 65001 64512 ] med 100 "
        "community [ 65001:100 31898:200 ] extended-community [ target:65001:1 ] "
        "large-community [ 65001:1:2 ] atomic-aggregate aggregator ( 65001:192.0.2.1 )"
    )
    assert Route("10.0.0.0/8").render() == "10.0.0.0/8 next-hop self"


@pytest.mark.parametrize(
    "route",
    [
        Route("2001:db8::/32"),  # next-hop self on IPv6: ExaBGP config error
        Route("10.0.0.0/8", next_hop="::ffff:127.0.0.2"),
        Route("10.0.0.0/8", communities=["65001:100; withdraw"]),
        Route("10.0.0.0/8", origin="bgp"),
        Route("10.0.0.0/8", as_path=[-1]),
        Route("not-a-prefix"),
    ],
)
def test_route_validation(route: Route) -> None:
    with pytest.raises(ValueError):
        route.render()


def test_spec_validation() -> None:
    with pytest.raises(ValueError, match="connect_port, listen_port"):
        PeerSpec(name="x", local_address="127.0.0.2", local_as=1, peer_as=2).validate()
    with pytest.raises(ValueError, match="loopback"):
        PeerSpec(name="x", local_address="10.0.0.2", local_as=1, peer_as=2, connect_port=179).validate()
    with pytest.raises(ValueError, match="family"):
        PeerSpec(
            name="x",
            local_address="127.0.0.2",
            local_as=1,
            peer_as=2,
            connect_port=179,
            ipv6=False,
            announce=[Route("2001:db8::/32", next_hop="::ffff:127.0.0.2")],
        ).validate()


def test_render_config_modes() -> None:
    base: dict[str, Any] = {"name": "p", "local_address": "127.0.0.2", "local_as": 65001, "peer_as": 31898}
    active = PeerSpec(**base, connect_port=1790, md5="k").render_config(["/bin/true"])
    assert "connect 1790;" in active and "passive;" not in active and "listen" not in active
    assert 'md5-password "k";' in active and 'run "/bin/true";' in active
    assert "family { ipv4 unicast; ipv6 unicast; }" in active
    passive = PeerSpec(**base, listen_port=1791, route_refresh=False, graceful_restart=120).render_config([])
    assert "passive;" in passive and "listen 1791;" in passive and "connect" not in passive
    assert "capability { route-refresh disable; graceful-restart 120; }" in passive
    both = PeerSpec(**base, connect_port=1790, listen_port=1791).render_config([])
    assert "connect 1790;" in both and "listen 1791;" in both and "passive;" not in both


def test_spec_from_onprem_rules() -> None:
    edge, fw = specs_from_config(PRODUCT_CONFIG)
    assert (edge.local_address, edge.local_as, edge.peer_as) == ("127.0.0.2", 65001, 31898)
    assert (edge.peer_address, edge.connect_port, edge.listen_port) == ("127.0.0.1", 1790, None)
    assert edge.announce == [Route("192.168.200.1/32", next_hop="192.168.100.2", as_path=[65001])]
    assert (fw.local_address, fw.connect_port, fw.listen_port) == ("127.0.0.3", None, 1791)
    assert fw.announce[0].next_hop == "169.254.20.2" and fw.announce[0].as_path == [65002]

    both = spec_from_onprem(
        {"name": "b", "announce": [{"prefix": "2001:db8:5::/48", "med": 7}]},
        {
            "customer_ip": "192.168.1.2/30",
            "customer_asn": 65009,
            "peer": "127.0.0.9",
            "peer_port": 1800,
            "connect": "both",
            "md5_key": "s3cret",
        },
        31898,
        "127.0.0.1:1790",
    )
    assert (both.connect_port, both.listen_port, both.md5) == (1790, 1800, "s3cret")
    assert both.announce[0].next_hop == "::ffff:192.168.1.2" and both.announce[0].med == 7
    with pytest.raises(ValueError, match="unknown keys"):
        spec_from_onprem(
            {"name": "x", "announce": [{"prefix": "10.0.0.0/8", "aspath": [1]}]},
            PRODUCT_CONFIG["attachments"][1]["bgp"],
            31898,
            "127.0.0.1:1790",
        )


def _event(neighbor_extra: dict[str, Any], kind: str = "update") -> str:
    neighbor = {"address": {"local": "127.0.0.3", "peer": "127.0.0.2"}, **neighbor_extra}
    return json.dumps({"exabgp": "5.0.0", "type": kind, "neighbor": neighbor})


def test_event_parsing(tmp_path: Path) -> None:
    peer = ExaBGPPeer(PeerSpec(name="p", local_address="127.0.0.3", local_as=1, peer_as=2, listen_port=1))
    peer.workdir = tmp_path
    attrs = {
        "origin": "igp",
        "as-path": {
            "0": {"element": "as-sequence", "value": [65001]},
            "1": {"element": "as-set", "value": [1, 2]},
        },
        "community": [[65001, 1]],
    }
    lines = [
        _event({"state": "up"}, "state"),
        _event(
            {
                "message": {
                    "update": {
                        "attribute": attrs,
                        "announce": {
                            "ipv4 unicast": {"127.0.0.2": [{"nlri": "10.1.0.0/16"}, {"nlri": "10.2.0.0/16"}]}
                        },
                    }
                }
            }
        ),
        "done",
        _event({"message": {"update": {"withdraw": {"ipv4 unicast": [{"nlri": "10.1.0.0/16"}]}}}}),
        _event({"message": {"eor": {"afi": "ipv4", "safi": "unicast"}}}),
        _event({"direction": "receive", "notification": {"code": 6, "subcode": 2}}, "notification"),
        json.dumps({"exabgp": "5.0.0", "type": "notification", "notification": "shutdown"}),
    ]
    text = "\n".join(lines)
    peer.events_path.write_text(text[:50])  # a partial line is kept until its newline arrives
    assert peer.events() == []
    peer.events_path.write_text(text + "\n")
    assert len(peer.events()) == 6 and peer._answers == ["done"]
    assert peer.received() == {
        "10.2.0.0/16": {
            "family": "ipv4 unicast",
            "next-hop": "127.0.0.2",
            "origin": "igp",
            "as-path": [65001, [1, 2]],
            "community": ["65001:1"],
        }
    }
    assert peer.eor_received() == {"ipv4 unicast"} and peer.state() == "up"
    assert peer.notifications() == [{"code": 6, "subcode": 2}]
    with peer.events_path.open("a") as f:
        f.write(_event({"state": "down"}, "state") + "\n")
    assert peer.received() == {} and peer.eor_received() == set() and peer.state() == "down"


def test_normalize_attributes() -> None:
    out = normalize_attributes(
        {
            "extended-community": [{"value": 1, "string": "target:65001:1"}],
            "large-community": [[65001, 1, 2]],
            "med": 5,
        }
    )
    assert out == {"extended-community": ["target:65001:1"], "large-community": ["65001:1:2"], "med": 5}


# ---------------------------------------------------------------- interop


@pytest.mark.interop
@pytest.mark.timeout(90)
async def test_two_exabgp_routes_fifo_eor_and_cleanup(tmp_path: Path) -> None:
    port = free_port("127.0.0.3")
    listener = ExaBGPPeer(
        PeerSpec(
            name="listener",
            local_address="127.0.0.3",
            local_as=65002,
            peer_address="127.0.0.2",
            peer_as=65001,
            listen_port=port,
            announce=[Route("203.0.113.0/24", med=5)],
        )
    )
    connector = ExaBGPPeer(
        PeerSpec(
            name="connector",
            local_address="127.0.0.2",
            local_as=65001,
            peer_address="127.0.0.3",
            peer_as=65002,
            connect_port=port,  # no graceful_restart: with it, teardown sends no NOTIFICATION
            announce=[FULL_ROUTE, Route("2001:db8:1::/48", next_hop="::ffff:127.0.0.2", med=50)],
        )
    )
    pids: list[int] = []
    try:
        await listener.start(tmp_path)
        assert is_listening("127.0.0.3", port)
        await connector.start(tmp_path)
        pids = listener.pids() + connector.pids()
        assert len(pids) == 4

        # routes of the configuration, with every attribute, then an EoR per family
        both = {"ipv4 unicast", "ipv6 unicast"}
        await listener.wait_for(lambda p: p.eor_received() == both, timeout=20)
        assert listener.state() == "up"
        rib = listener.received()
        assert rib["192.0.2.0/24"] == {
            "family": "ipv4 unicast",
            "next-hop": "127.0.0.2",
            "origin": "egp",
            "as-path": [65001, 64512],
            "med": 100,
            "atomic-aggregate": True,
            "aggregator": "65001:192.0.2.1",
            "community": ["31898:200", "65001:100"],
            "extended-community": ["target:65001:1"],
            "large-community": ["65001:1:2"],
        }
        assert rib["2001:db8:1::/48"]["next-hop"] == "::ffff:127.0.0.2"
        assert rib["2001:db8:1::/48"]["as-path"] == [65001]  # no explicit path: [local-as]
        assert rib["2001:db8:1::/48"]["med"] == 50
        await connector.wait_for(lambda p: "203.0.113.0/24" in p.received(), timeout=10)
        assert connector.received()["203.0.113.0/24"]["next-hop"] == "127.0.0.3"
        assert connector.received()["203.0.113.0/24"]["as-path"] == [65002]

        # run-time announces and withdraws through the FIFO bridge
        await connector.announce(
            Route(
                "10.1.0.0/16",
                next_hop="127.0.0.2",
                as_path=[65001, 65010],
                communities=["65001:1"],
                large_communities=["65001:7:8"],
            )
        )
        await connector.announce(Route("2001:db8:2::/48", next_hop="::ffff:127.0.0.2"))
        await listener.wait_for(
            lambda p: {"10.1.0.0/16", "2001:db8:2::/48"} <= p.received().keys(), timeout=10
        )
        got = listener.received()["10.1.0.0/16"]
        assert got["as-path"] == [65001, 65010] and got["community"] == ["65001:1"]
        assert got["large-community"] == ["65001:7:8"]
        await connector.withdraw("10.1.0.0/16")
        await connector.withdraw("2001:db8:2::/48")
        await connector.withdraw("192.0.2.0/24")  # one from the configuration too
        await listener.wait_for(lambda p: set(p.received()) == {"2001:db8:1::/48"}, timeout=10)

        # raw commands: a teardown reaches the other side as a Cease NOTIFICATION
        summary = await connector.send("show neighbor summary")
        assert any("127.0.0.3" in line for line in summary)
        await connector.send("neighbor 127.0.0.3 teardown 2")
        await listener.wait_for(lambda p: bool(p.notifications()), timeout=10)
        assert (listener.notifications()[0]["code"], listener.notifications()[0]["subcode"]) == (6, 2)
        # ExaBGP reconnects; the connector's routes come back in the new session
        await listener.wait_for(lambda p: p.state() == "up" and "2001:db8:1::/48" in p.received(), timeout=20)
        types = {e["type"] for e in listener.events()}
        assert {"state", "update", "notification"} <= types
    finally:
        await connector.stop()
        await listener.stop()
    assert_gone(pids)
    assert not listener.running and not connector.running


@pytest.mark.interop
@pytest.mark.timeout(60)
async def test_both_mode_and_md5_from_onprem_entry(tmp_path: Path) -> None:
    """A `both` session: ExaBGP connects (to a port where nobody listens) and also listens;
    the other side connects in, with an MD5 key on both."""
    listen = free_port("127.0.0.2")
    nowhere = free_port("127.0.0.3")
    spec = spec_from_onprem(
        {"name": "cpe", "announce": [{"prefix": "172.20.10.0/24"}]},
        {
            "customer_ip": "169.254.20.2/30",
            "customer_asn": 65002,
            "peer": "127.0.0.2",
            "peer_port": listen,
            "connect": "both",
            "md5_key": "s3cret-key",
        },
        drg_asn=31898,
        drg_listen=f"127.0.0.3:{nowhere}",
    )
    cpe = ExaBGPPeer(spec)
    drg = ExaBGPPeer(
        PeerSpec(
            name="drg",
            local_address="127.0.0.3",
            local_as=31898,
            peer_address="127.0.0.2",
            peer_as=65002,
            connect_port=listen,
            md5="s3cret-key",
            ipv6=False,
            announce=[Route("10.10.0.0/16")],
            graceful_restart=120,
            route_refresh=False,
        )
    )
    pids: list[int] = []
    try:
        await cpe.start(tmp_path)
        assert is_listening("127.0.0.2", listen)
        await drg.start(tmp_path)
        pids = cpe.pids() + drg.pids()
        await drg.wait_for(lambda p: "172.20.10.0/24" in p.received(), timeout=20)
        route = drg.received()["172.20.10.0/24"]
        assert route["next-hop"] == "169.254.20.2" and route["as-path"] == [65002]
        await cpe.wait_for(lambda p: "10.10.0.0/16" in p.received(), timeout=10)
    finally:
        await drg.stop()
        await cpe.stop()
    assert_gone(pids)


@pytest.mark.interop
@pytest.mark.timeout(60)
async def test_lab_from_product_example(tmp_path: Path) -> None:
    """The product.md example: `edge` (passive session: ExaBGP connects to the DRG) and
    `firewall-t1` (active session: ExaBGP listens), with ExaBGP standing in for the DRG."""
    config = json.loads(json.dumps(PRODUCT_CONFIG))
    drg_port = free_port("127.0.0.1")
    fw_port = free_port("127.0.0.3")
    config["speaker"]["listen"] = f"127.0.0.1:{drg_port}"
    config["attachments"][2]["bgp"]["peer_port"] = fw_port
    specs = specs_from_config(config)
    drg_vc = PeerSpec(
        name="drg-vc",
        local_address="127.0.0.1",
        local_as=31898,
        peer_address="127.0.0.2",
        peer_as=65001,
        listen_port=drg_port,
        ipv6=False,
    )
    drg_tun = PeerSpec(
        name="drg-tun",
        local_address="127.0.0.1",
        local_as=31898,
        peer_address="127.0.0.3",
        peer_as=65002,
        connect_port=fw_port,
        ipv6=False,
    )
    onprem, drg = Lab(), Lab()
    pids: list[int] = []
    try:
        await onprem.start(specs, tmp_path / "onprem")
        await drg.start([drg_vc, drg_tun], tmp_path / "drg")
        pids = onprem.pids() + drg.pids()
        await drg.wait_all("up", timeout=20)
        await drg["drg-vc"].wait_for(lambda p: "192.168.200.1/32" in p.received(), timeout=10)
        assert drg["drg-vc"].received()["192.168.200.1/32"]["next-hop"] == "192.168.100.2"
        assert drg["drg-vc"].received()["192.168.200.1/32"]["as-path"] == [65001]
        await drg["drg-tun"].wait_for(lambda p: "172.20.10.0/24" in p.received(), timeout=10)
        assert drg["drg-tun"].received()["172.20.10.0/24"]["next-hop"] == "169.254.20.2"
    finally:
        await drg.stop()
        await onprem.stop()
    assert_gone(pids)


@pytest.mark.interop
@pytest.mark.timeout(60)
async def test_start_failure_and_wait_for_timeout(tmp_path: Path) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as busy:
        busy.bind(("127.0.0.3", 0))
        busy.listen()
        port = busy.getsockname()[1]
        peer = ExaBGPPeer(
            PeerSpec(
                name="busy",
                local_address="127.0.0.3",
                local_as=65002,
                peer_address="127.0.0.2",
                peer_as=65001,
                listen_port=port,
            )
        )
        with pytest.raises(RuntimeError, match="exited with rc"):
            await peer.start(tmp_path)
        assert_gone(peer.pids())

    nobody = free_port("127.0.0.3")
    lonely = ExaBGPPeer(
        PeerSpec(
            name="lonely",
            local_address="127.0.0.2",
            local_as=65001,
            peer_address="127.0.0.3",
            peer_as=65002,
            connect_port=nobody,
        )
    )
    try:
        await lonely.start(tmp_path)
        with pytest.raises(TimeoutError, match=r"received 0 prefix\(es\)"):
            await lonely.wait_for(lambda p: "10.0.0.0/8" in p.received(), timeout=0.3)
    finally:
        await lonely.stop()
    assert_gone(lonely.pids())
