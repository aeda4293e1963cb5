"""BGP-4 protocol numbers, named after the RFCs that define them.

Everything on the wire that is a number with a name lives here as an ``IntEnum`` (so it prints as
its name and still compares equal to the plain int read off the wire) or as a ``Final`` int.
Sources: RFC 4271 (BGP-4), RFC 4760 (multiprotocol), RFC 5492 (capabilities), RFC 6608 (FSM
errors), RFC 4486 (Cease subcodes), RFC 7313 (enhanced route refresh), RFC 8654 (extended
messages), RFC 4724 (graceful restart), RFC 6793 (4-octet AS), RFC 1997/4360/8092 (communities).
"""

from __future__ import annotations

from enum import IntEnum
from typing import Final

from controlplane.prefix import AFI_IPV4 as AFI_IPV4  # address families are defined once, in prefix.py
from controlplane.prefix import AFI_IPV6 as AFI_IPV6

BGP_VERSION: Final = 4
MARKER: Final = b"\xff" * 16
HEADER_LEN: Final = 19
MAX_MESSAGE_LEN: Final = 4096
EXTENDED_MAX_MESSAGE_LEN: Final = 65535
AS_TRANS: Final = 23456

SAFI_UNICAST: Final = 1
SAFI_MULTICAST: Final = 2

# Path attribute flag bits (RFC 4271 s.4.3).
FLAG_OPTIONAL: Final = 0x80
FLAG_TRANSITIVE: Final = 0x40
FLAG_PARTIAL: Final = 0x20
FLAG_EXTENDED_LENGTH: Final = 0x10


class MessageType(IntEnum):
    OPEN = 1
    UPDATE = 2
    NOTIFICATION = 3
    KEEPALIVE = 4
    ROUTE_REFRESH = 5


class AFI(IntEnum):
    """RFC 4760 address families; the values are ``prefix.AFI_IPV4``/``AFI_IPV6``, defined once there."""

    IPV4 = AFI_IPV4
    IPV6 = AFI_IPV6


class SAFI(IntEnum):
    UNICAST = 1
    MULTICAST = 2


class AttrType(IntEnum):
    ORIGIN = 1
    AS_PATH = 2
    NEXT_HOP = 3
    MED = 4
    LOCAL_PREF = 5
    ATOMIC_AGGREGATE = 6
    AGGREGATOR = 7
    COMMUNITIES = 8
    ORIGINATOR_ID = 9  # RFC 4456
    CLUSTER_LIST = 10  # RFC 4456
    MP_REACH = 14
    MP_UNREACH = 15
    EXTENDED_COMMUNITIES = 16
    AS4_PATH = 17
    AS4_AGGREGATOR = 18
    LARGE_COMMUNITIES = 32


class Origin(IntEnum):
    IGP = 0
    EGP = 1
    INCOMPLETE = 2


class SegmentType(IntEnum):
    AS_SET = 1
    AS_SEQUENCE = 2
    AS_CONFED_SEQUENCE = 3
    AS_CONFED_SET = 4


class ErrorCode(IntEnum):
    MESSAGE_HEADER = 1
    OPEN_MESSAGE = 2
    UPDATE_MESSAGE = 3
    HOLD_TIMER_EXPIRED = 4
    FSM = 5
    CEASE = 6
    ROUTE_REFRESH_MESSAGE = 7


class HeaderSubcode(IntEnum):
    UNSPECIFIC = 0
    CONNECTION_NOT_SYNCHRONIZED = 1
    BAD_MESSAGE_LENGTH = 2
    BAD_MESSAGE_TYPE = 3


class OpenSubcode(IntEnum):
    UNSPECIFIC = 0
    UNSUPPORTED_VERSION_NUMBER = 1
    BAD_PEER_AS = 2
    BAD_BGP_IDENTIFIER = 3
    UNSUPPORTED_OPTIONAL_PARAMETER = 4
    AUTHENTICATION_FAILURE = 5  # deprecated by RFC 4271
    UNACCEPTABLE_HOLD_TIME = 6
    UNSUPPORTED_CAPABILITY = 7  # RFC 5492


class UpdateSubcode(IntEnum):
    UNSPECIFIC = 0
    MALFORMED_ATTRIBUTE_LIST = 1
    UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE = 2
    MISSING_WELL_KNOWN_ATTRIBUTE = 3
    ATTRIBUTE_FLAGS_ERROR = 4
    ATTRIBUTE_LENGTH_ERROR = 5
    INVALID_ORIGIN_ATTRIBUTE = 6
    AS_ROUTING_LOOP = 7  # deprecated by RFC 4271
    INVALID_NEXT_HOP_ATTRIBUTE = 8
    OPTIONAL_ATTRIBUTE_ERROR = 9
    INVALID_NETWORK_FIELD = 10
    MALFORMED_AS_PATH = 11


class FsmSubcode(IntEnum):
    UNSPECIFIED = 0
    UNEXPECTED_MESSAGE_IN_OPENSENT = 1
    UNEXPECTED_MESSAGE_IN_OPENCONFIRM = 2
    UNEXPECTED_MESSAGE_IN_ESTABLISHED = 3


class CeaseSubcode(IntEnum):
    UNSPECIFIC = 0
    MAXIMUM_NUMBER_OF_PREFIXES_REACHED = 1
    ADMINISTRATIVE_SHUTDOWN = 2
    PEER_DE_CONFIGURED = 3
    ADMINISTRATIVE_RESET = 4
    CONNECTION_REJECTED = 5
    OTHER_CONFIGURATION_CHANGE = 6
    CONNECTION_COLLISION_RESOLUTION = 7
    OUT_OF_RESOURCES = 8


class RouteRefreshSubcode(IntEnum):
    RESERVED = 0
    INVALID_MESSAGE_LENGTH = 1


class RouteRefreshSubtype(IntEnum):
    NORMAL = 0
    BEGINNING_OF_ROUTE_REFRESH = 1
    END_OF_ROUTE_REFRESH = 2


class CapabilityCode(IntEnum):
    MULTIPROTOCOL = 1
    ROUTE_REFRESH = 2
    EXTENDED_MESSAGE = 6
    ENHANCED_ROUTE_REFRESH = 70  # RFC 7313
    GRACEFUL_RESTART = 64
    FOUR_OCTET_AS = 65


class OptionalParameterType(IntEnum):
    CAPABILITIES = 2
    EXTENDED_LENGTH = 255  # RFC 9072 marker


SUBCODES: Final[dict[int, type[IntEnum]]] = {
    ErrorCode.MESSAGE_HEADER: HeaderSubcode,
    ErrorCode.OPEN_MESSAGE: OpenSubcode,
    ErrorCode.UPDATE_MESSAGE: UpdateSubcode,
    ErrorCode.FSM: FsmSubcode,
    ErrorCode.CEASE: CeaseSubcode,
    ErrorCode.ROUTE_REFRESH_MESSAGE: RouteRefreshSubcode,
}


def error_name(code: int, subcode: int) -> str:
    """``"UPDATE_MESSAGE/MALFORMED_ATTRIBUTE_LIST"`` for (3, 1); numbers for unknown values."""
    try:
        code_name = ErrorCode(code).name
    except ValueError:
        return f"{code}/{subcode}"
    table = SUBCODES.get(code)
    if table is None:
        return f"{code_name}/{subcode}"
    try:
        return f"{code_name}/{table(subcode).name}"
    except ValueError:
        return f"{code_name}/{subcode}"
