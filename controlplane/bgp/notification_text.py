"""Human-readable names for NOTIFICATION codes and subcodes (RFC 4271 s.4.5, 6608, 4486, 7313, 9003, 9687).

``notification_text(6, 2, data)`` gives ``"Cease/Administrative Shutdown: 'maintenance'"``: the
shutdown communication of RFC 9003 (a length octet, then UTF-8) is decoded when present.
"""

from __future__ import annotations

from typing import Final

from controlplane.bgp.constants import (
    CeaseSubcode,
    ErrorCode,
    FsmSubcode,
    HeaderSubcode,
    OpenSubcode,
    RouteRefreshSubcode,
    UpdateSubcode,
)

CODES: dict[int, str] = {
    ErrorCode.MESSAGE_HEADER: "Message Header Error",
    ErrorCode.OPEN_MESSAGE: "OPEN Message Error",
    ErrorCode.UPDATE_MESSAGE: "UPDATE Message Error",
    ErrorCode.HOLD_TIMER_EXPIRED: "Hold Timer Expired",
    ErrorCode.FSM: "Finite State Machine Error",
    ErrorCode.CEASE: "Cease",
    ErrorCode.ROUTE_REFRESH_MESSAGE: "ROUTE-REFRESH Message Error",
    ErrorCode.SEND_HOLD_TIMER_EXPIRED: "Send Hold Timer Expired",
}

SUBCODES: dict[int, dict[int, str]] = {
    ErrorCode.MESSAGE_HEADER: {
        HeaderSubcode.CONNECTION_NOT_SYNCHRONIZED: "Connection Not Synchronized",
        HeaderSubcode.BAD_MESSAGE_LENGTH: "Bad Message Length",
        HeaderSubcode.BAD_MESSAGE_TYPE: "Bad Message Type",
    },
    ErrorCode.OPEN_MESSAGE: {
        OpenSubcode.UNSUPPORTED_VERSION_NUMBER: "Unsupported Version Number",
        OpenSubcode.BAD_PEER_AS: "Bad Peer AS",
        OpenSubcode.BAD_BGP_IDENTIFIER: "Bad BGP Identifier",
        OpenSubcode.UNSUPPORTED_OPTIONAL_PARAMETER: "Unsupported Optional Parameter",
        OpenSubcode.UNACCEPTABLE_HOLD_TIME: "Unacceptable Hold Time",
        OpenSubcode.UNSUPPORTED_CAPABILITY: "Unsupported Capability",
    },
    ErrorCode.UPDATE_MESSAGE: {
        UpdateSubcode.MALFORMED_ATTRIBUTE_LIST: "Malformed Attribute List",
        UpdateSubcode.UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE: "Unrecognized Well-known Attribute",
        UpdateSubcode.MISSING_WELL_KNOWN_ATTRIBUTE: "Missing Well-known Attribute",
        UpdateSubcode.ATTRIBUTE_FLAGS_ERROR: "Attribute Flags Error",
        UpdateSubcode.ATTRIBUTE_LENGTH_ERROR: "Attribute Length Error",
        UpdateSubcode.INVALID_ORIGIN_ATTRIBUTE: "Invalid ORIGIN Attribute",
        UpdateSubcode.INVALID_NEXT_HOP_ATTRIBUTE: "Invalid NEXT_HOP Attribute",
        UpdateSubcode.OPTIONAL_ATTRIBUTE_ERROR: "Optional Attribute Error",
        UpdateSubcode.INVALID_NETWORK_FIELD: "Invalid Network Field",
        UpdateSubcode.MALFORMED_AS_PATH: "Malformed AS_PATH",
    },
    ErrorCode.FSM: {
        FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENSENT: "Receive Unexpected Message in OpenSent State",
        FsmSubcode.UNEXPECTED_MESSAGE_IN_OPENCONFIRM: "Receive Unexpected Message in OpenConfirm State",
        FsmSubcode.UNEXPECTED_MESSAGE_IN_ESTABLISHED: "Receive Unexpected Message in Established State",
    },
    ErrorCode.CEASE: {
        CeaseSubcode.MAXIMUM_NUMBER_OF_PREFIXES_REACHED: "Maximum Number of Prefixes Reached",
        CeaseSubcode.ADMINISTRATIVE_SHUTDOWN: "Administrative Shutdown",
        CeaseSubcode.PEER_DE_CONFIGURED: "Peer De-configured",
        CeaseSubcode.ADMINISTRATIVE_RESET: "Administrative Reset",
        CeaseSubcode.CONNECTION_REJECTED: "Connection Rejected",
        CeaseSubcode.OTHER_CONFIGURATION_CHANGE: "Other Configuration Change",
        CeaseSubcode.CONNECTION_COLLISION_RESOLUTION: "Connection Collision Resolution",
        CeaseSubcode.OUT_OF_RESOURCES: "Out of Resources",
    },
    ErrorCode.ROUTE_REFRESH_MESSAGE: {RouteRefreshSubcode.INVALID_MESSAGE_LENGTH: "Invalid Message Length"},
}

# Cease subcodes whose data is an RFC 9003 shutdown communication (a length octet, then UTF-8).
SHUTDOWN_COMMUNICATION: Final = (CeaseSubcode.ADMINISTRATIVE_SHUTDOWN, CeaseSubcode.ADMINISTRATIVE_RESET)


def notification_text(code: int, subcode: int, data: bytes = b"") -> str:
    name = CODES.get(code, f"code {code}")
    sub = SUBCODES.get(code, {}).get(subcode)
    text = f"{name}/{sub}" if sub else (f"{name}" if subcode == 0 else f"{name}/subcode {subcode}")
    if code == ErrorCode.CEASE and subcode in SHUTDOWN_COMMUNICATION and data:
        length = data[0]
        message = bytes(data[1 : 1 + length]).decode("utf-8", "replace")
        if message:
            text += f": {message!r}"
    elif code == ErrorCode.CEASE and subcode == CeaseSubcode.MAXIMUM_NUMBER_OF_PREFIXES_REACHED and len(data) >= 7:
        afi = int.from_bytes(data[0:2], "big")
        limit = int.from_bytes(data[3:7], "big")
        text += f" (AFI {afi}, limit {limit})"
    return text
