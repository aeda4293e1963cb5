"""The DRG configuration file's schema: pydantic v2 models, one per object of the file.

Every model forbids unknown fields and is strict about types (``config/load.py`` reads files and
turns pydantic errors into problems with a fix). Checks that need a single object only (address pairs,
ASNs, prefix limits, a tunnel's routing) live here as validators raising :func:`rule_error`; checks
across objects live in ``config/validate.py``; field types live in ``config/fields.py``. Every problem of a file is
reported at once. Addresses and prefixes are normalised strings
(``10.0.0.0/24``); the route engine turns them into compact keys (``prefix.py``).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import AfterValidator, Field, model_validator

from controlplane.config.api import ApiSection as ApiSection  # the api block: listeners and who may talk
from controlplane.config.fields import (
    DEFAULT_VPN_PRIVATE_ASN,
    INVALID_TUNNEL_RANGES,
    ORACLE_ASN,
    AsPathItem,
    Cidr,
    CustomerAsn,
    HostPort,
    Interface,
    IpAddress,
    Ipv4Address,
    Name,
    Port,
    Priority,
    StrictModel,
    check_drg_asn,
    check_hold_time,
    check_md5_key,
    check_pair,
    check_private_asn,
    rule_error,
    split_host_port,
)
from controlplane.config.rpc import Provenance, RemotePeeringAttachment
from controlplane.config.vcn import Vcn as Vcn  # the VCN side lives in config/vcn.py


class AttachmentType(StrEnum):
    """OCI's DrgAttachment types (networkDetails.type); LOOPBACK is the emulator's headend (R45)."""

    VCN = "VCN"
    VIRTUAL_CIRCUIT = "VIRTUAL_CIRCUIT"
    IPSEC_TUNNEL = "IPSEC_TUNNEL"
    REMOTE_PEERING_CONNECTION = "REMOTE_PEERING_CONNECTION"
    LOOPBACK = "LOOPBACK"


ATTACHMENT_TYPES = ("VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL", "REMOTE_PEERING_CONNECTION")  # match criteria

_Model = StrictModel


# --------------------------------------------------------------------------- sections

class DrgSection(_Model):
    name: Name
    asn: Annotated[int, AfterValidator(check_drg_asn)] = ORACLE_ASN
    vpn_private_asn: Annotated[int, AfterValidator(check_private_asn)] = DEFAULT_VPN_PRIVATE_ASN
    router_id: Ipv4Address | None = None
    region: str | None = None  # the OCI region (e.g. us-ashburn-1): an RPC's peerRegionName (R94)


class SpeakerSection(_Model):
    listen: HostPort = "127.0.0.1:1790"


class EventsSection(_Model):
    mqtt: str | None = None
    embedded_listen: HostPort = "127.0.0.1:1883"
    tls_ca: str | None = None  # mqtts:// only: CA file to verify the broker with (default: the system's)
    tls_insecure: bool = False  # mqtts:// only: skip certificate and host name checks (test brokers)

    @model_validator(mode="after")
    def _check_mqtt(self) -> EventsSection:
        value = self.mqtt
        if (self.tls_ca is not None or self.tls_insecure) and not (value or "").startswith("mqtts://"):
            raise rule_error("schema", "events.tls_ca and events.tls_insecure apply to an mqtts:// broker only",
                             "write events.mqtt as mqtts://HOST:PORT, or remove tls_ca and tls_insecure",
                             object="events", field="tls_ca" if self.tls_ca is not None else "tls_insecure")
        if value is None or value == "embedded":
            return self
        parts = urlsplit(value)
        try:
            port = parts.port
        except ValueError:
            port = None
        if (parts.scheme not in ("mqtt", "mqtts") or not parts.hostname or not port
                or parts.path not in ("", "/") or parts.query or parts.fragment):
            raise rule_error("schema", f"events.mqtt {value!r} is not mqtt[s]://[user:password@]HOST:PORT",
                             "write e.g. mqtt://127.0.0.1:1883 (mqtts:// for TLS), or embedded, or null",
                             object="events", field="mqtt")
        return self


class MaxPrefixes(_Model):
    """Per-AFI prefix limits of a session (R58, R64: OCI's 2000 IPv4 / 500 IPv6)."""

    ipv4: Annotated[int, Field(ge=1)] = 2000
    ipv6: Annotated[int, Field(ge=1)] = 500


class _BgpBase(_Model):
    oracle_ip: Interface
    customer_ip: Interface
    customer_asn: CustomerAsn
    peer: IpAddress
    peer_port: Port = 179
    connect: Literal["passive", "active", "both"] = "passive"
    max_prefixes: MaxPrefixes = MaxPrefixes()
    hold_time: Annotated[int, AfterValidator(check_hold_time)] = 30  # R55: OCI offers 30 s


class VcBgpIpv6(_Model):
    """The IPv6 peering of a dual-stack VC (R53): its own BGP session, carrying the IPv6 routes."""

    oracle_ip: Interface
    customer_ip: Interface
    peer: IpAddress
    peer_port: Port = 179
    connect: Literal["passive", "active", "both"] = "passive"
    md5_key: Annotated[str | None, AfterValidator(check_md5_key)] = None  # R54
    max_prefixes: MaxPrefixes = MaxPrefixes()  # R58: the IPv6 limit (500) applies to this session
    hold_time: Annotated[int, AfterValidator(check_hold_time)] = 30

    @model_validator(mode="after")
    def _check_addresses(self) -> VcBgpIpv6:
        check_pair(self.oracle_ip, self.customer_ip, {4: (28, 31), 6: (64, 127)}, "R53", "VC peering address")
        if ":" not in self.oracle_ip:
            raise rule_error("R53", f"bgp.ipv6.oracle_ip {self.oracle_ip} is not an IPv6 address",
                             "use IPv6 peering addresses here (e.g. 2001:db8:100::1/126); the IPv4 peering "
                             "goes in bgp.oracle_ip/customer_ip", field="ipv6.oracle_ip")
        return self


class VcBgp(_BgpBase):
    md5_key: Annotated[str | None, AfterValidator(check_md5_key)] = None  # R54
    ipv6: VcBgpIpv6 | None = None  # a second session over the IPv6 peering (R53, R59)

    @model_validator(mode="after")
    def _check_addresses(self) -> VcBgp:
        check_pair(self.oracle_ip, self.customer_ip, {4: (28, 31), 6: (64, 127)}, "R53", "VC peering address")
        if self.ipv6 is not None and ":" in self.oracle_ip:
            raise rule_error("R53", f"bgp.oracle_ip {self.oracle_ip} is IPv6 and bgp.ipv6 is set too",
                             "put the IPv4 peering in bgp.oracle_ip/customer_ip and the IPv6 one in bgp.ipv6, "
                             "or remove bgp.ipv6 for an IPv6-only VC", field="ipv6")
        return self


class TunnelBgp(_BgpBase):
    md5_key: None = None

    @model_validator(mode="before")
    @classmethod
    def _no_md5(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("md5_key") is not None:
            raise rule_error("R63", "Site-to-Site VPN BGP has no MD5 authentication",
                             "remove md5_key from this tunnel's bgp block", field="md5_key")
        return data

    @model_validator(mode="after")
    def _check_addresses(self) -> TunnelBgp:
        check_pair(self.oracle_ip, self.customer_ip, {4: (30, 31), 6: (64, 127)}, "R62",
                    "inside-tunnel address")
        for text in (self.oracle_ip, self.customer_ip):
            address = ipaddress.ip_interface(text).ip
            for low, high in INVALID_TUNNEL_RANGES:
                if isinstance(address, ipaddress.IPv4Address) and low <= address <= high:
                    raise rule_error("R62", f"{text} lies in OCI's invalid link-local range {low}-{high}",
                                     "use other 169.254.x.x space (e.g. 169.254.20.0/30) or RFC 1918 space")
        return self


class VcnAttachment(_Model):
    name: Name
    type: Literal["VCN"]
    vcn: str
    route_table: str | None = None
    vcn_route_type: Literal["SUBNET_CIDRS", "VCN_CIDRS"] = "SUBNET_CIDRS"  # R22
    ingress_route_table: str | None = None  # a VCN route table of ``vcn``: networkDetails.routeTableId (R73, R74)
    display_name: str | None = None


class VirtualCircuitAttachment(_Model):
    name: Name
    type: Literal["VIRTUAL_CIRCUIT"]
    route_table: str | None = None
    transport_only: bool = False  # R42: "IPSec over FastConnect traffic only"
    export_distribution: Literal["default", "none"] = "default"  # R10, R11
    bgp: VcBgp
    display_name: str | None = None


class IpsecTunnelAttachment(_Model):
    name: Name
    type: Literal["IPSEC_TUNNEL"]
    route_table: str | None = None
    transport_attachment: str | None = None  # R7: the VC carrying this tunnel (IPSec over FastConnect)
    oracle_tunnel_ip: IpAddress | None = None
    cpe_ip: IpAddress
    routing: Literal["BGP", "STATIC"]
    bgp: TunnelBgp | None = None
    static_routes: Annotated[list[Cidr], Field(max_length=10)] = []  # R65
    export_distribution: Literal["default", "none"] = "default"
    display_name: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _default_routing(cls, data: Any) -> Any:
        """R61: BGP when a bgp block is given, else STATIC."""
        if isinstance(data, dict) and data.get("routing") is None:
            data = {**data, "routing": "BGP" if data.get("bgp") is not None else "STATIC"}
        return data

    @model_validator(mode="after")
    def _check_routing(self) -> IpsecTunnelAttachment:
        if self.routing == "BGP" and self.bgp is None:
            raise rule_error("R62", "a BGP tunnel needs a bgp block (customer ASN and inside addresses)",
                             "add a bgp block, or set routing: STATIC with static_routes", field="bgp")
        if self.routing == "STATIC":
            if self.bgp is not None:
                raise rule_error("R62", "a STATIC tunnel has no BGP session",
                                 "remove the bgp block, or set routing: BGP", field="bgp")
            if not self.static_routes:
                raise rule_error("R65", "a STATIC tunnel needs 1-10 static_routes",
                                 "list the on-prem CIDRs in static_routes, e.g. [172.20.10.0/24]",
                                 field="static_routes")
        if self.transport_attachment is not None and self.oracle_tunnel_ip is None:
            raise rule_error("R39", "an IPSec-over-FastConnect tunnel must name its oracle_tunnel_ip",
                             "add oracle_tunnel_ip: the Oracle headend address, e.g. 172.16.255.1",
                             field="oracle_tunnel_ip")
        return self


Attachment = Annotated[VcnAttachment | VirtualCircuitAttachment | IpsecTunnelAttachment | RemotePeeringAttachment,
                       Field(discriminator="type")]


class StaticRoute(_Model):
    destination: Cidr
    next_hop: str
    destination_type: str = "CIDR_BLOCK"
    id: str | None = None  # the rule's OCI id; default derived from table + destination (oci_models.py)

    @model_validator(mode="after")
    def _cidr_block_only(self) -> StaticRoute:
        if self.destination_type != "CIDR_BLOCK":
            raise rule_error("R14", "static rules may only use destinationType CIDR_BLOCK, "
                             f"not {self.destination_type}",
                             "remove destination_type (CIDR_BLOCK is implied)", field="destination_type")
        return self


class RouteTable(_Model):
    name: Name
    import_distribution: str | None = None
    ecmp: bool = False  # R18
    static_routes: list[StaticRoute] = []
    display_name: str | None = None


@dataclass(frozen=True)
class Match:
    """One match criterion (R19): ``all``, an attachment type, or one attachment by name."""

    kind: Literal["all", "attachment_type", "attachment"]
    value: str | None = None

    def describe(self) -> str:
        if self.kind == "all":
            return "MATCH_ALL"
        if self.kind == "attachment_type":
            return f"DRG_ATTACHMENT_TYPE {self.value}"
        return f"DRG_ATTACHMENT_ID {self.value}"

    def to_json(self) -> dict[str, str]:
        if self.kind == "all":
            return {"matchType": "MATCH_ALL"}
        if self.kind == "attachment_type":
            return {"matchType": "DRG_ATTACHMENT_TYPE", "attachmentType": str(self.value)}
        return {"matchType": "DRG_ATTACHMENT_ID", "drgAttachment": str(self.value)}


_MATCH_FIX = "write match: all, match: {attachment_type: VCN}, or match: {attachment: NAME}"


class Statement(_Model):
    priority: Priority
    match: Match
    action: Literal["ACCEPT"] = "ACCEPT"  # R19: ACCEPT is the only action
    id: str | None = None  # the statement's OCI id; default derived from distribution + priority

    @model_validator(mode="before")
    @classmethod
    def _parse_match(cls, data: Any) -> Any:
        if not isinstance(data, dict) or "match" not in data or isinstance(data["match"], Match):
            return data
        return {**data, "match": parse_match(data["match"])}


def parse_match(raw: Any) -> Match:
    if isinstance(raw, str) and raw.lower() in ("all", "match_all"):
        return Match("all")
    if not isinstance(raw, dict) or not raw:
        raise rule_error("schema", f"invalid match {raw!r}", _MATCH_FIX, field="match")
    if len(raw) != 1:
        raise rule_error("R19", f"a statement has at most one match criterion, this one has {len(raw)}",
                         "split it into one statement per criterion", field="match")
    (kind, value), = raw.items()
    if kind == "attachment_type":
        if value == "LOOPBACK":
            raise rule_error("R5", "OCI has no LOOPBACK match type: routing to loopbacks is system-managed",
                             "remove this statement; the emulator adds the loopback statements (R45)",
                             field="match")
        if value not in ATTACHMENT_TYPES:
            raise rule_error("schema", f"attachment_type {value!r} is not one of VCN, VIRTUAL_CIRCUIT, "
                             "IPSEC_TUNNEL, REMOTE_PEERING_CONNECTION",
                             "use VCN, VIRTUAL_CIRCUIT, IPSEC_TUNNEL or REMOTE_PEERING_CONNECTION", field="match")
        return Match("attachment_type", value)
    if kind == "attachment":
        if not isinstance(value, str):
            raise rule_error("schema", f"attachment {value!r} is not a name", "name an attachment",
                             field="match")
        return Match("attachment", value)
    raise rule_error("schema", f"unknown match criterion {kind!r}", _MATCH_FIX, field="match")


class Distribution(_Model):
    name: Name
    type: Literal["IMPORT", "EXPORT"] = "IMPORT"
    statements: list[Statement] = []
    display_name: str | None = None


class OnpremRoute(_Model):
    prefix: Cidr
    as_path: list[AsPathItem] | None = None  # default: [the session's customer_asn]
    next_hop: IpAddress | None = None  # default: the session's customer_ip address


class Onprem(_Model):
    name: Name
    session: str
    announce: list[OnpremRoute] = []
    kind: Literal["exabgp", "frr", "bird"] = "exabgp"  # the program that plays it (peers/)


class DrgConfig(_Model):
    drg: DrgSection
    speaker: SpeakerSection = SpeakerSection()
    api: ApiSection = ApiSection()
    events: EventsSection = EventsSection()
    vcns: list[Vcn] = []
    attachments: list[Attachment] = []
    route_tables: list[RouteTable] = []
    distributions: list[Distribution] = []
    onprem: list[Onprem] = []

    @model_validator(mode="after")
    def _router_id(self) -> DrgConfig:
        if self.drg.router_id is None:
            host = split_host_port(self.speaker.listen)[0]
            try:
                ipaddress.IPv4Address(host)
            except ValueError:
                raise rule_error("schema", f"speaker.listen {host} is not IPv4, so it cannot be the BGP "
                                 "Identifier", "set drg.router_id to an IPv4 address", object="drg",
                                 field="router_id") from None
        return self

    @property
    def router_id(self) -> str:
        """The BGP Identifier: ``drg.router_id``, default the ``speaker.listen`` address."""
        return self.drg.router_id or split_host_port(self.speaker.listen)[0]


class LearnedRoute(_Model):
    """One line of an offline "learned" file (product.md, offline mode). Under an RPC attachment whose
    peer is not in the file, a route also carries the provenance of its origin and its network
    distance (R98, R99, R109; default VCN, 1)."""

    prefix: Cidr
    as_path: list[AsPathItem] | None = None
    provenance: Provenance | None = None
    network_distance: Annotated[int, Field(ge=1, le=4)] | None = None
