"""The encoding of RPC routes as BGP UPDATE attributes (R109, controlplane/router/rpc_codec.py), pure.

Round trips through the attributes and through real UPDATE bytes on an iBGP session, the documented
example values, and every malformed form treated as withdrawn (RFC 7606) with its reason.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.messages import Negotiated, Update, decode_message
from controlplane.bgp.update import pack_announcements
from controlplane.config.effective import RpcOffer
from controlplane.engine.rules import RpcPath
from controlplane.prefix import AFI_IPV4, AFI_IPV6, parse_prefix
from controlplane.router.rpc_codec import (
    LOCAL_PREF,
    MalformedRpcRoute,
    RpcCodec,
    decode_route,
    encode_route,
    rpc_communities,
)
from tests.support.bgp import split_messages

ASN = 31898
IBGP = Negotiated(asn4=True, extended_message=False, families=frozenset({(1, 1), (2, 1)}), ibgp=True)


def test_the_documented_example() -> None:
    assert rpc_communities(ASN, "VIRTUAL_CIRCUIT", 2, ("drg-a", "drg-b")) == (
        (ASN, 1, 3), (ASN, 2, 2), (ASN, 3, 2),
        (ASN, 1000, 1685219117), (ASN, 1001, 1627389952),  # b"drg-", b"a\0\0\0"
        (ASN, 2000, 1685219117), (ASN, 2001, 1644167168))  # b"drg-", b"b\0\0\0"


@pytest.mark.parametrize(("as_path", "provenance", "distance", "drg_path"), [
    ((), "VCN", 1, ("drg-a",)),
    ((65001,), "VIRTUAL_CIRCUIT", 1, ("drg-a",)),
    ((64512, 65002, (65010, 65011)), "IPSEC_TUNNEL", 3, ("d0", "d1", "d2")),  # an AS_SET stays a set
    ((), "STATIC", 4, ("x" * 100,)),  # a 100-character name: 25 chunks, no padding
    ((), "VCN", 2, ("A.b_c-9",)),  # distance above the path length: an external origin (R99)
])
def test_round_trip(as_path: tuple[int | tuple[int, ...], ...], provenance: str, distance: int,
                    drg_path: tuple[str, ...]) -> None:
    attrs = encode_route(ASN, as_path, provenance, distance, drg_path)
    assert attrs.local_pref == LOCAL_PREF
    path = decode_route(ASN, attrs)
    assert path == RpcPath(as_path, provenance, distance, drg_path)


@given(st.lists(st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True), min_size=1, max_size=3,
                unique=True),
       st.sampled_from(["STATIC", "VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL"]), st.integers(0, 5),
       st.lists(st.integers(1, 4_294_967_295), max_size=5))
def test_any_route_round_trips_through_update_bytes(names: list[str], provenance: str, extra: int,
                                                    as_path: list[int]) -> None:
    """Encoded, packed into an UPDATE of an iBGP session, decoded by the codec: the same route."""
    drg_path = tuple(names)
    offer = RpcOffer(AFI_IPV4, parse_prefix("10.1.0.0/16")[1], provenance, tuple(as_path),
                     len(drg_path) + extra, drg_path)
    attrs = RpcCodec(ASN).attributes(offer)
    (data,) = list(pack_announcements(AFI_IPV4, [offer.key], attrs, IBGP, "127.0.3.1"))
    ((msg_type, body),) = split_messages(data)
    update = decode_message(msg_type, body, IBGP)
    assert isinstance(update, Update) and update.attributes is not None and not update.errors
    assert decode_route(ASN, update.attributes) == RpcPath(offer.as_path, provenance, offer.distance, drg_path)


def test_an_ipv6_route_round_trips_in_mp_reach() -> None:
    offer = RpcOffer(AFI_IPV6, parse_prefix("2001:db8::/32")[1], "VCN", (), 1, ("drg-a",))
    (data,) = list(pack_announcements(AFI_IPV6, [offer.key], RpcCodec(ASN).attributes(offer), IBGP,
                                      "::ffff:127.0.3.1"))
    ((msg_type, body),) = split_messages(data)
    update = decode_message(msg_type, body, IBGP)
    assert isinstance(update, Update) and update.attributes is not None and update.mp_reach is not None
    assert decode_route(ASN, update.attributes) == RpcPath((), "VCN", 1, ("drg-a",))


def test_other_administrators_are_ignored_and_exact_duplicates_removed() -> None:
    good = rpc_communities(ASN, "VCN", 1, ("drg-a",))
    attrs = PathAttributes.make(large_communities=[*good, (65001, 1, 99), good[0]])  # RFC 8092 s.5
    assert decode_route(ASN, attrs) == RpcPath((), "VCN", 1, ("drg-a",))


def _with(*communities: tuple[int, int, int], drop: tuple[int, ...] = ()) -> PathAttributes:
    """drg-a's VCN route with some of its communities dropped (by function) and others added."""
    good = [c for c in rpc_communities(ASN, "VCN", 1, ("drg-a",)) if c[1] not in drop]
    return PathAttributes.make(large_communities=[*good, *communities])


@pytest.mark.parametrize(("attrs", "reason"), [
    (_with(drop=(1,)), "missing large community 31898:1"),
    (_with(drop=(1, 2)), "missing large community 31898:1 and 2"),
    (_with((ASN, 1, 3)), "31898:1 appears twice"),
    (_with((ASN, 1, 0), drop=(1,)), "unknown provenance code 0"),
    (_with((ASN, 2, 0), drop=(2,)), "network distance 0"),
    (_with((ASN, 3, 0), drop=(3,)), "DRG path of 0 DRGs"),
    (_with((ASN, 3, 4), (ASN, 2, 4), drop=(2, 3)), "DRG path of 4 DRGs: 1 to 3 cross an RPC (R103)"),
    (_with((ASN, 3, 2), (ASN, 2, 2), drop=(2, 3)), "do not match a path of 2 DRGs"),
    (_with((ASN, 1003, 0)), "chunks [0, 1, 3]"),
    (_with(drop=(1000, 1001)), "do not match a path of 1 DRGs"),
    (_with((ASN, 7, 1)), "unknown function"),
    (PathAttributes.make(large_communities=[(ASN, 1, 2), (ASN, 2, 1), (ASN, 3, 1), (ASN, 1000, 0)]),
     "is not a valid name"),
    (PathAttributes.make(large_communities=[(ASN, 1, 2), (ASN, 2, 1), (ASN, 3, 1),
                                            (ASN, 1000, int.from_bytes(b"a b!", "big"))]), "is not a valid name"),
    (PathAttributes.make(large_communities=[(ASN, 1, 2), (ASN, 2, 1), (ASN, 3, 1),
                                            (ASN, 1000, int.from_bytes(b"a\0b\0", "big"))]), "is not a valid name"),
    (PathAttributes.make(large_communities=[*rpc_communities(ASN, "VCN", 2, ("d", "d"))]), "names a DRG twice"),
    (PathAttributes.make(large_communities=[]), "missing large community"),
])
def test_malformed_communities_are_refused_with_a_reason(attrs: PathAttributes, reason: str) -> None:
    with pytest.raises(MalformedRpcRoute) as info:
        decode_route(ASN, attrs)
    assert reason in str(info.value)


def test_the_codec_shares_attributes_and_remembers_refusals() -> None:
    codec = RpcCodec(ASN)
    one = codec.attributes(RpcOffer(AFI_IPV4, 1, "VCN", (), 1, ("drg-a",)))
    assert codec.attributes(RpcOffer(AFI_IPV4, 2, "VCN", (), 1, ("drg-a",))) is one
    bad = PathAttributes.make(large_communities=[(ASN, 1, 9)])
    for _ in range(2):
        with pytest.raises(MalformedRpcRoute):
            codec.path(bad)
