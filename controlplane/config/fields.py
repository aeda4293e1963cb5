"""Field types of the configuration file: validated, normalised strings and ints.

How it works: each type is an ``Annotated`` alias whose validator normalises the value (``10.0.0.0/24``,
``192.0.2.1``) or raises :func:`rule_error`, a pydantic error that carries the OCI rule that decided
(an R-number of oci-drg-semantics.md, or ``schema``) and a fix; ``config/schema.py`` turns those errors into
``Problem`` records. Checks on pairs of addresses (BGP peering subnets, R53/R62) live here too.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field
from pydantic_core import PydanticCustomError

ORACLE_ASN = 31898
DEFAULT_VPN_PRIVATE_ASN = 64512
INVALID_TUNNEL_RANGES = (  # R62: inside-tunnel addresses OCI refuses
    (ipaddress.IPv4Address("169.254.10.0"), ipaddress.IPv4Address("169.254.19.255")),
    (ipaddress.IPv4Address("169.254.100.0"), ipaddress.IPv4Address("169.254.109.255")),
    (ipaddress.IPv4Address("169.254.192.0"), ipaddress.IPv4Address("169.254.201.255")),
)


def rule_error(rule: str, message: str, fix: str, **where: str) -> PydanticCustomError:
    """A validator error carrying its rule and fix (and optionally ``object``/``field``)."""
    return PydanticCustomError(f"rule_{rule}", "{msg}", {"msg": message, "rule": rule, "fix": fix, **where})


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")
_HOST_RE = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$")


def _name(value: str) -> str:
    if not _NAME_RE.match(value):
        raise rule_error("schema", f"invalid name {value!r}", "use 1-100 characters: letters, digits, "
                         "'.', '_' and '-', starting with a letter or digit")
    return value


def _cidr(value: str) -> str:
    try:
        net = ipaddress.ip_network(value, strict=True)
    except ValueError:
        try:
            loose = ipaddress.ip_network(value, strict=False)
        except ValueError:
            raise rule_error("schema", f"{value!r} is not an IPv4 or IPv6 CIDR",
                             "write a prefix like 10.0.0.0/24 or 2001:db8::/48") from None
        raise rule_error("schema", f"{value!r} has host bits set",
                         f"write the network address: {loose}") from None
    if "/" not in value:
        raise rule_error("schema", f"{value!r} has no prefix length", f"write it as {net}")
    return str(net)


def _address(value: str) -> str:
    try:
        return str(ipaddress.ip_address(value))
    except ValueError:
        raise rule_error("schema", f"{value!r} is not an IP address",
                         "write an address like 192.0.2.1") from None


def _ipv4(value: str) -> str:
    try:
        return str(ipaddress.IPv4Address(value))
    except ValueError:
        raise rule_error("schema", f"{value!r} is not an IPv4 address",
                         "write a dotted-quad address like 192.0.2.1") from None


def _interface(value: str) -> str:
    try:
        iface = ipaddress.ip_interface(value)
    except ValueError:
        raise rule_error("schema", f"{value!r} is not an address with a mask",
                         "write it like 192.168.100.1/30") from None
    if "/" not in value:
        raise rule_error("schema", f"{value!r} has no mask", "write it with its mask, like 192.168.100.1/30")
    return str(iface)


def split_host_port(value: str) -> tuple[str, int]:
    """``"127.0.0.1:1790"`` or ``"[::1]:1790"`` -> ``(host, port)``; raises ValueError."""
    match = re.match(r"^\[([0-9A-Fa-f:.]+)\]:(\d+)$", value) or re.match(r"^([^:\[\]]+):(\d+)$", value)
    if not match:
        raise ValueError(value)
    host, port = match.group(1), int(match.group(2))
    if not 1 <= port <= 65535:
        raise ValueError(value)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOST_RE.match(host):
            raise ValueError(value) from None
    return host, port


def _host_port(value: str) -> str:
    try:
        split_host_port(value)
    except ValueError:
        raise rule_error("schema", f"{value!r} is not HOST:PORT",
                         "write it like 127.0.0.1:1790 (IPv6: [::1]:1790), port 1-65535") from None
    return value


def _customer_asn(value: int) -> int:
    """R52's precise list of refused customer ASNs."""
    refused = {0: "reserved", 23456: "AS_TRANS", 65534: "not allowed by OCI", 65535: "reserved",
               4294967295: "reserved"}
    reason = refused.get(value)
    if reason is None and (64496 <= value <= 64511 or 65536 <= value <= 65551):
        reason = "reserved for documentation"
    if reason is None and not 1 <= value <= 4294967294:
        reason = "outside 1-4294967294"
    if reason is not None:
        raise rule_error("R52", f"customer ASN {value} is {reason}",
                         "use a public ASN or a private one (64512-65533, 4200000000-4294967294)")
    return value


def check_drg_asn(value: int) -> int:
    if not 1 <= value <= 4294967294 or value == 23456:
        raise rule_error("R51", f"{value} is not a usable ASN", f"use Oracle's ASN {ORACLE_ASN} (R51)")
    return value


def check_private_asn(value: int) -> int:
    if not (64512 <= value <= 65534 or 4200000000 <= value <= 4294967294):
        raise rule_error("R28", f"vpn_private_asn {value} is not a private ASN",
                         f"use a private ASN such as {DEFAULT_VPN_PRIVATE_ASN}")
    return value


def check_hold_time(value: int) -> int:
    if value != 0 and not 3 <= value <= 65535:
        raise rule_error("R55", f"hold_time {value} is not valid BGP (0, or 3-65535 seconds)",
                         "use OCI's default 30 (supported 18-180)")
    return value


def check_md5_key(value: str | None) -> str | None:
    if value is not None and not (1 <= len(value) <= 80 and all(" " <= ch <= "~" for ch in value)):
        raise rule_error("R54", "md5_key must be 1-80 printable ASCII characters",
                         "use a shorter ASCII key, or null for no MD5")
    return value


Name = Annotated[str, AfterValidator(_name)]
Cidr = Annotated[str, AfterValidator(_cidr)]
IpAddress = Annotated[str, AfterValidator(_address)]
Ipv4Address = Annotated[str, AfterValidator(_ipv4)]
Interface = Annotated[str, AfterValidator(_interface)]
HostPort = Annotated[str, AfterValidator(_host_port)]
Port = Annotated[int, Field(ge=1, le=65535)]
CustomerAsn = Annotated[int, AfterValidator(_customer_asn)]
Priority = Annotated[int, Field(ge=0, le=65535)]  # R20: 0-65535 (API text)
AsPathItem = int | list[int]



def check_pair(oracle: str, customer: str, lengths: dict[int, tuple[int, int]], rule: str,
                what: str) -> None:
    o, c = ipaddress.ip_interface(oracle), ipaddress.ip_interface(customer)
    if o.version != c.version:
        raise rule_error(rule, f"oracle_ip {oracle} and customer_ip {customer} are of different families",
                         "use two addresses of the same family and subnet")
    low, high = lengths[o.version]
    if not low <= o.network.prefixlen <= high:
        raise rule_error(rule, f"{what} {oracle} has mask /{o.network.prefixlen}, not /{low}-/{high}",
                         f"use a /{low} to /{high} subnet, e.g. x.x.x.1/30 and x.x.x.2/30")
    if o.network != c.network:
        raise rule_error(rule, f"oracle_ip {oracle} and customer_ip {customer} are not in the same subnet",
                         f"put customer_ip in {o.network} with the same mask")
    if o.ip == c.ip:
        raise rule_error(rule, f"oracle_ip and customer_ip are both {o.ip}", "use two different addresses")
    if o.network.num_addresses > 2:
        ends = {o.network.network_address, o.network.broadcast_address} if o.version == 4 \
            else {o.network.network_address}
        for iface in (o, c):
            if iface.ip in ends:
                raise rule_error(rule, f"{iface} is not a usable host address of {o.network}",
                                 "use host addresses of the subnet, e.g. .1 and .2 of a /30")


class StrictModel(BaseModel):
    """Every object of the file: unknown fields are refused, types are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True)
