"""RPC routes on a BGP session between two daemons (R109): what a route carries, as UPDATE attributes.

A DRG whose RPC peer runs in another daemon sends that peer its RPC export (R97) over an iBGP session
(both ends are OCI's AS; R98: the DRG modifies no BGP attribute). Each route travels as:

* its prefix in the NLRI (IPv4) or MP_REACH_NLRI (IPv6), with the sender's router id as next hop
  (the receiver ignores it: the next hop of an RPC route is the receiving RPC attachment, R97);
* its AS path, unchanged, in AS_PATH (R98: an RPC route competes with the AS path it carries, R102);
  ORIGIN IGP and LOCAL_PREF 100, as on every iBGP route;
* its provenance, network distance and DRG path as BGP large communities (RFC 8092), all with the
  DRG's ASN (31898, the sender's and the receiver's) as global administrator:

  ===========================  ==========================================================================
  ``ASN:1:P``                  provenance (C1): P = 1 STATIC, 2 VCN, 3 VIRTUAL_CIRCUIT, 4 IPSEC_TUNNEL
  ``ASN:2:D``                  network distance at the receiver (R99): D >= 1 and D >= N
  ``ASN:3:N``                  the DRG path holds N DRGs, origin first (R103): 1 <= N < 4
  ``ASN:(1000*h + c):X``       DRG name number h (1..N) of the path: X is its bytes 4c..4c+3 (ASCII,
                               big-endian, the last chunk padded with NUL bytes); c = 0, 1, ...
  ===========================  ==========================================================================

  So ``drg-a`` as the first DRG of the path is ``31898:1000:1685219117`` (``b"drg-"``) and
  ``31898:1001:1627389952`` (``b"a\\0\\0\\0"``). Names need no registry or numbering agreed by the two
  files: they are spelled out, and a name of the file (``[A-Za-z0-9][A-Za-z0-9._-]{0,99}``) takes at
  most 25 communities.

Decoding is strict (RFC 7606 treat-as-withdraw, s.2: the routes of an UPDATE whose RPC communities are
malformed are handled as withdrawn, never installed and never a reason to reset the session): each of
1, 2, 3 exactly once, a known provenance, a distance and a path length in range, every DRG named by
contiguous chunks from 0 with a valid name, no DRG twice in the path, and no other function number under
our ASN. Exact duplicates are removed first (RFC 8092 s.5); large communities of another global
administrator are ignored. Pure: no I/O.
"""

from __future__ import annotations

import re
from typing import Final

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import Origin
from controlplane.config.effective import RpcOffer
from controlplane.engine.rpc import MAX_DRG_PATH
from controlplane.engine.rules import AsPath, RpcPath

PROVENANCE_CODE: Final = {"STATIC": 1, "VCN": 2, "VIRTUAL_CIRCUIT": 3, "IPSEC_TUNNEL": 4}
PROVENANCE_OF_CODE: Final = {code: name for name, code in PROVENANCE_CODE.items()}
PROVENANCE, DISTANCE, PATH_LENGTH = 1, 2, 3  # data 1 of the three single-valued communities
NAME_BASE = 1000  # data 1 of a name chunk: NAME_BASE * hop + chunk (hop counts from 1)
CHUNK = 4  # name bytes per community
LOCAL_PREF = 100  # RFC 4271 s.5.1.5: every UPDATE to an internal peer carries LOCAL_PREF
_NAME_RE = re.compile(rb"[A-Za-z0-9][A-Za-z0-9._-]{0,99}")  # config.fields' Name


class MalformedRpcRoute(ValueError):
    """The RPC communities of an UPDATE are malformed: its routes are treated as withdrawn (RFC 7606)."""


def rpc_communities(asn: int, provenance: str, distance: int,
                    drg_path: tuple[str, ...]) -> tuple[tuple[int, int, int], ...]:
    """The large communities of one RPC route (the module's table)."""
    out = [(asn, PROVENANCE, PROVENANCE_CODE[provenance]), (asn, DISTANCE, distance),
           (asn, PATH_LENGTH, len(drg_path))]
    for hop, name in enumerate(drg_path, start=1):
        raw = name.encode("ascii")
        raw += b"\0" * (-len(raw) % CHUNK)
        out.extend((asn, NAME_BASE * hop + c, int.from_bytes(raw[c * CHUNK:(c + 1) * CHUNK], "big"))
                   for c in range(len(raw) // CHUNK))
    return tuple(out)


def encode_route(asn: int, as_path: AsPath, provenance: str, distance: int,
                 drg_path: tuple[str, ...]) -> PathAttributes:
    """The attributes of one RPC route (the next hop is the session's, filled in when sending)."""
    return PathAttributes.make(origin=Origin.IGP, as_path=as_path, local_pref=LOCAL_PREF,
                               large_communities=rpc_communities(asn, provenance, distance, drg_path))


def decode_route(asn: int, attributes: PathAttributes) -> RpcPath:
    """The route an UPDATE's attributes describe: its AS path (AS_SETs as nested tuples) with provenance,
    network distance and DRG path. Raises :class:`MalformedRpcRoute` saying what is wrong."""
    single: dict[int, int] = {}
    chunks: dict[int, dict[int, int]] = {}
    for admin, function, value in dict.fromkeys(attributes.large_communities):
        if admin != asn:
            continue
        if function in (PROVENANCE, DISTANCE, PATH_LENGTH):
            if function in single:
                raise MalformedRpcRoute(f"large community {asn}:{function} appears twice with different values")
            single[function] = value
        elif function >= NAME_BASE:
            chunks.setdefault(function // NAME_BASE, {})[function % NAME_BASE] = value
        else:
            raise MalformedRpcRoute(f"large community {asn}:{function}:{value} has an unknown function")
    missing = [str(f) for f in (PROVENANCE, DISTANCE, PATH_LENGTH) if f not in single]
    if missing:
        raise MalformedRpcRoute(f"missing large community {asn}:{' and '.join(missing)}")
    provenance = PROVENANCE_OF_CODE.get(single[PROVENANCE])
    if provenance is None:
        raise MalformedRpcRoute(f"unknown provenance code {single[PROVENANCE]} (1-4)")
    length, distance = single[PATH_LENGTH], single[DISTANCE]
    if not 1 <= length < MAX_DRG_PATH:
        raise MalformedRpcRoute(f"DRG path of {length} DRGs: 1 to {MAX_DRG_PATH - 1} cross an RPC (R103)")
    if distance < length:
        raise MalformedRpcRoute(f"network distance {distance} is shorter than the DRG path ({length}, R99)")
    drg_path = _drg_path(length, chunks)
    path = tuple(x if isinstance(x, int) else tuple(x) for x in attributes.flat_as_path())
    return RpcPath(path, provenance, distance, drg_path)


def _drg_path(length: int, chunks: dict[int, dict[int, int]]) -> tuple[str, ...]:
    if set(chunks) != set(range(1, length + 1)):
        raise MalformedRpcRoute(f"DRG names {sorted(chunks)} do not match a path of {length} DRGs")
    names: list[str] = []
    for hop in range(1, length + 1):
        parts = chunks[hop]
        if set(parts) != set(range(len(parts))):
            raise MalformedRpcRoute(f"DRG name {hop} has chunks {sorted(parts)}, not 0..{len(parts) - 1}")
        raw = b"".join(parts[c].to_bytes(CHUNK, "big") for c in range(len(parts)))
        name = raw.rstrip(b"\0")
        if len(raw) - len(name) >= CHUNK or not _NAME_RE.fullmatch(name):
            raise MalformedRpcRoute(f"DRG name {hop} ({raw!r}) is not a valid name")
        names.append(name.decode("ascii"))
    if len(set(names)) != len(names):
        raise MalformedRpcRoute(f"DRG path {names} names a DRG twice")
    return tuple(names)


class RpcCodec:
    """Encoding and decoding for one DRG, each attributes object built or read once (routes share them)."""

    def __init__(self, asn: int) -> None:
        self.asn = asn
        self._out: dict[tuple[AsPath, str, int, tuple[str, ...]], PathAttributes] = {}
        self._in: dict[PathAttributes, RpcPath | MalformedRpcRoute] = {}

    def attributes(self, offer: RpcOffer) -> PathAttributes:
        key = (offer.as_path, offer.provenance, offer.distance, offer.drg_path)
        attrs = self._out.get(key)
        if attrs is None:
            if len(self._out) > 65536:
                self._out.clear()
            attrs = self._out[key] = encode_route(self.asn, *key)
        return attrs

    def path(self, attributes: PathAttributes) -> RpcPath:
        """:func:`decode_route`, remembered per attributes object (raises :class:`MalformedRpcRoute`)."""
        found = self._in.get(attributes)
        if found is None:
            if len(self._in) > 65536:
                self._in.clear()
            try:
                found = decode_route(self.asn, attributes)
            except MalformedRpcRoute as exc:
                found = exc
            self._in[attributes] = found
        if isinstance(found, MalformedRpcRoute):
            raise found
        return found
