"""Hypothesis round trips: ``decode(encode(x)) == x`` for every message, capability and attribute,
on 2- and 4-octet AS sessions, eBGP and iBGP, with and without extended messages."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from controlplane.bgp.attributes import PathAttributes
from controlplane.bgp.constants import AS_TRANS, HEADER_LEN, AttrType
from controlplane.bgp.messages import (
    Capability,
    ExtendedMessageCapability,
    FourOctetAsCapability,
    GracefulRestartCapability,
    Keepalive,
    Message,
    MpReach,
    MpUnreach,
    MultiprotocolCapability,
    Negotiated,
    Notification,
    Open,
    RouteRefresh,
    RouteRefreshCapability,
    UnknownCapability,
    Update,
    decode_message,
    encode,
    parse_header,
)
from controlplane.bgp.update import encode_update_body

U8 = st.integers(0, 0xFF)
U16 = st.integers(0, 0xFFFF)
U32 = st.integers(0, 0xFFFFFFFF)
KNOWN_ATTRIBUTES = {int(t) for t in AttrType}  # ORIGINATOR_ID/CLUSTER_LIST too: from eBGP they are discarded
KNOWN_CAPABILITIES = {1, 2, 6, 64, 65}

negotiations = st.builds(
    Negotiated,
    asn4=st.booleans(),
    extended_message=st.booleans(),
    families=st.just(frozenset({(1, 1), (2, 1)})),
    ibgp=st.booleans(),
)


def keys(afi: int) -> st.SearchStrategy[int]:
    bits = 32 if afi == 1 else 128
    return st.integers(0, bits).flatmap(
        lambda length: st.integers(0, (1 << length) - 1).map(
            lambda net: (net << (bits - length)) << 8 | length
        )
    )


ipv4_text = st.tuples(U8, U8, U8, U8).map(lambda parts: ".".join(map(str, parts)))
unicast_ipv4 = st.tuples(st.integers(1, 223), U8, U8, U8).map(lambda parts: ".".join(map(str, parts)))
ipv6_text = st.sampled_from(["2001:db8::1", "::ffff:127.0.0.2", "fe80::1", "2001:db8:1:2:3:4:5:6", "::1"])


def as_paths(asn4: bool) -> st.SearchStrategy[tuple[tuple[int, tuple[int, ...]], ...]]:
    def segment(kind: int, asn: st.SearchStrategy[int]) -> st.SearchStrategy[tuple[int, tuple[int, ...]]]:
        return st.tuples(st.just(kind), st.lists(asn, min_size=1, max_size=8).map(tuple))

    # What a receiver installs: no AS 0 (RFC 7607), no AS_SET / AS_CONFED_SET (RFC 9774); the
    # confederation sequences only matter over iBGP (the round trips decode them as internal).
    asn = st.integers(1, 0xFFFFFFFF)
    main = st.lists(segment(2, asn), max_size=4)
    # on a 2-octet session confederation segments lead the path and use 2-octet AS numbers
    confed = st.lists(segment(3, asn if asn4 else st.integers(1, 0xFFFF)), max_size=2)
    return st.tuples(confed, main).map(lambda parts: tuple(parts[0] + parts[1]))


@st.composite
def unknown_attributes(draw: st.DrawFn) -> tuple[tuple[int, int, bytes], ...]:
    """Unrecognized optional transitive attributes, in type order as the encoder writes them."""
    codes = draw(st.lists(U8.filter(lambda code: code not in KNOWN_ATTRIBUTES), unique=True, max_size=3))
    return tuple((0xE0, code, draw(st.binary(max_size=300))) for code in sorted(codes))


def path_attributes(asn4: bool, next_hop: bool) -> st.SearchStrategy[PathAttributes]:
    return st.builds(
        PathAttributes,
        origin=st.integers(0, 2),
        as_path=as_paths(asn4),
        next_hop=unicast_ipv4 if next_hop else st.none() | unicast_ipv4,
        med=st.none() | U32,
        local_pref=st.none() | U32,
        atomic_aggregate=st.booleans(),
        aggregator=st.none() | st.tuples(st.integers(1, 0xFFFFFFFF), ipv4_text),
        communities=st.lists(U32, max_size=6).map(tuple),
        extended_communities=st.lists(st.binary(min_size=8, max_size=8), max_size=4).map(tuple),
        large_communities=st.lists(st.tuples(U32, U32, U32), max_size=4).map(tuple),
        unknown=unknown_attributes(),
    )


def as4_path_ignored(attributes: PathAttributes, negotiated: Negotiated) -> bool:
    """On a 2-octet session, an AGGREGATOR with a 2-octet AS other than AS_TRANS makes the receiver
    ignore AS4_PATH (RFC 6793 s.4.2.3), so 4-octet AS numbers of the path arrive as AS_TRANS."""
    aggregator = attributes.aggregator
    return (
        not negotiated.asn4
        and aggregator is not None
        and aggregator[0] <= 0xFFFF
        and aggregator[0] != AS_TRANS
        and any(asn > 0xFFFF for _, asns in attributes.as_path for asn in asns)
    )


def for_session(attributes: PathAttributes, negotiated: Negotiated) -> PathAttributes:
    """What a speaker sends on the session: no confederation segments to an external peer (RFC 5065)."""
    if negotiated.ibgp:
        return attributes
    return replace(attributes, as_path=tuple(segment for segment in attributes.as_path if segment[0] == 2))


def expected_attributes(attributes: PathAttributes, negotiated: Negotiated) -> PathAttributes:
    """What the peer decodes: no LOCAL_PREF over eBGP, and the RFC 6793 quirk above."""
    if not negotiated.ibgp:
        attributes = replace(attributes, local_pref=None)
    if as4_path_ignored(attributes, negotiated):
        mapped = tuple(
            (kind, tuple(asn if asn <= 0xFFFF else AS_TRANS for asn in asns))
            for kind, asns in attributes.as_path
        )
        attributes = replace(attributes, as_path=mapped)
    return attributes


def expected_errors(attributes: PathAttributes | None, negotiated: Negotiated) -> tuple[str, ...]:
    if attributes is not None and as4_path_ignored(attributes, negotiated):
        return ("AGGREGATOR from a 2-octet AS speaker: AS4_PATH and AS4_AGGREGATOR ignored",)
    return ()


@st.composite
def updates(draw: st.DrawFn, negotiated: Negotiated) -> Update:
    nlri = tuple(draw(st.lists(keys(1), max_size=30)))
    withdrawn = tuple(draw(st.lists(keys(1), max_size=30)))
    mp_reach = None
    if draw(st.booleans()):
        afi = draw(st.sampled_from([1, 2]))
        hop = (draw(ipv4_text),) if afi == 1 else tuple(draw(st.lists(ipv6_text, min_size=1, max_size=2)))
        mp_reach = MpReach(afi, 1, hop, tuple(draw(st.lists(keys(afi), max_size=30))))
    mp_unreach = None
    if draw(st.booleans()):
        afi = draw(st.sampled_from([1, 2]))
        mp_unreach = MpUnreach(afi, 1, tuple(draw(st.lists(keys(afi), max_size=30))))
    attributes = None
    if nlri or mp_reach is not None or draw(st.booleans()):
        attributes = draw(path_attributes(negotiated.asn4, next_hop=bool(nlri)))
    return Update(withdrawn, attributes, nlri, mp_reach, mp_unreach)


def round_trip(message: Message, negotiated: Negotiated) -> Message:
    raw = encode(message, negotiated)
    length, kind = parse_header(raw[:HEADER_LEN], negotiated.max_message_len)
    assert length == len(raw) <= negotiated.max_message_len
    return decode_message(kind, memoryview(raw)[HEADER_LEN:], negotiated)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.data(), negotiations)
def test_update_round_trip(data: st.DataObject, negotiated: Negotiated) -> None:
    update = data.draw(updates(negotiated))
    if update.attributes is not None:
        update = replace(update, attributes=for_session(update.attributes, negotiated))
    if HEADER_LEN + len(encode_update_body(update, negotiated)) > negotiated.max_message_len:
        return  # too big for this session; covered by test_too_big_update_is_refused
    decoded = round_trip(update, negotiated)
    expected = replace(update, errors=expected_errors(update.attributes, negotiated))
    if update.attributes is not None:
        expected = replace(expected, attributes=expected_attributes(update.attributes, negotiated))
    assert decoded == expected


@settings(max_examples=300)
@given(path_attributes(asn4=True, next_hop=True), st.booleans())
def test_attributes_round_trip_on_4_octet_sessions(attributes: PathAttributes, ibgp: bool) -> None:
    negotiated = Negotiated(asn4=True, ibgp=ibgp)
    attributes = for_session(attributes, negotiated)
    decoded = round_trip(Update(attributes=attributes, nlri=(0x0A000008,)), negotiated)
    assert isinstance(decoded, Update) and decoded.errors == ()
    assert decoded.attributes == expected_attributes(attributes, negotiated)
    assert hash(decoded.attributes) == hash(expected_attributes(attributes, negotiated))


@settings(max_examples=300)
@given(path_attributes(asn4=False, next_hop=True), st.booleans())
def test_attributes_round_trip_on_2_octet_sessions(attributes: PathAttributes, ibgp: bool) -> None:
    negotiated = Negotiated(asn4=False, ibgp=ibgp)
    attributes = for_session(attributes, negotiated)
    decoded = round_trip(Update(attributes=attributes, nlri=(0x0A000008,)), negotiated)
    assert isinstance(decoded, Update) and not decoded.treat_as_withdraw
    assert decoded.errors == expected_errors(attributes, negotiated)
    assert decoded.attributes == expected_attributes(attributes, negotiated)


capabilities: st.SearchStrategy[Capability] = st.one_of(
    st.builds(MultiprotocolCapability, U16, U8),
    st.just(RouteRefreshCapability()),
    st.just(ExtendedMessageCapability()),
    st.builds(FourOctetAsCapability, U32),
    st.builds(
        GracefulRestartCapability,
        st.integers(0, 15),
        st.integers(0, 4095),
        st.lists(st.tuples(U16, U8, U8), max_size=5).map(tuple),
    ),
    st.builds(
        UnknownCapability, U8.filter(lambda code: code not in KNOWN_CAPABILITIES), st.binary(max_size=40)
    ),
)


@settings(max_examples=300)
@given(
    st.builds(
        Open,
        version=U8,
        my_as=U16,
        hold_time=U16,
        bgp_identifier=ipv4_text,
        capabilities=st.lists(capabilities, max_size=12).map(tuple),
    ),
    negotiations,
)
def test_open_round_trip(message: Open, negotiated: Negotiated) -> None:
    assert round_trip(message, negotiated) == message


@given(st.builds(Notification, U8, U8, st.binary(max_size=200)), negotiations)
def test_notification_round_trip(message: Notification, negotiated: Negotiated) -> None:
    assert round_trip(message, negotiated) == message


@given(st.builds(RouteRefresh, U16, U8, U8), negotiations)
def test_route_refresh_round_trip(message: RouteRefresh, negotiated: Negotiated) -> None:
    assert round_trip(message, negotiated) == message


def test_keepalive_round_trip() -> None:
    assert round_trip(Keepalive(), Negotiated()) == Keepalive()


def test_too_big_update_is_refused() -> None:
    big = Update(withdrawn=tuple((i << 8) << 8 | 24 for i in range(1100)))
    try:
        encode(big, Negotiated())
    except ValueError as exc:
        assert "4096" in str(exc)
    else:
        raise AssertionError("a 4400-octet UPDATE must not encode on a 4096-octet session")
    assert len(encode(big, Negotiated(extended_message=True))) > 4096
