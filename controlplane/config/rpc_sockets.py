"""Checks on the sockets of RPC sessions between daemons (R109): every incoming connection finds its session.

An RPC whose ``peer`` has ``remote`` is a BGP session of this daemon's speaker with the daemon that
runs the peer DRG. The speaker matches an accepted connection to its session by source address, so
``remote.address`` must be no other session's peer address (a VC's or tunnel's ``bgp.peer``, another
RPC's ``remote.address``), and it must not be this daemon's own listener (a session with itself).
Both daemons must use the same DRG ASN (iBGP, R98); that is checked when the session opens (a wrong
AS is refused with OPEN error Bad Peer AS), since one file cannot see the other.
"""

from __future__ import annotations

from controlplane.config.fields import split_host_port
from controlplane.config.problems import Report
from controlplane.config.rpc import RemotePeeringAttachment, RpcPeer
from controlplane.config.schema import DrgConfig


def check_rpc_sockets(cfg: DrgConfig, r: Report) -> None:
    """R109: unambiguous sockets for the RPC sessions of ``cfg``."""
    used: dict[str, str] = {}
    for att in cfg.attachments:
        bgp = getattr(att, "bgp", None)
        if bgp is not None:
            used.setdefault(str(bgp.peer), att.name)
    listen = split_host_port(cfg.speaker.listen)
    for att in cfg.attachments:
        if not isinstance(att, RemotePeeringAttachment) or not isinstance(att.peer, RpcPeer):
            continue
        remote = att.peer.remote
        if remote is None:
            continue
        address = str(remote.address)
        if (address, remote.port) == listen:
            r.error(att.name, "peer.remote", "R109", f"{address}:{remote.port} is this daemon's own "
                    "speaker.listen: the RPC would peer with itself",
                    f"give the socket of the daemon that runs {att.peer.drg}")
            continue
        other = used.setdefault(address, att.name)
        if other != att.name:
            r.error(att.name, "peer.remote.address", "R109", f"{att.name} and {other} both expect connections "
                    f"from {address}: an incoming connection could not be matched to its session",
                    "run the peer DRG's daemon on its own loopback address (e.g. 127.0.0.9)")
