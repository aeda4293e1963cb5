"""Human-readable names for NOTIFICATION codes and subcodes (RFC 4271 s.4.5, 6608, 4486, 7313, 9003).

``notification_text(6, 2, data)`` gives ``"Cease/Administrative Shutdown: 'maintenance'"``: the
shutdown communication of RFC 9003 (a length octet, then UTF-8) is decoded when present.
"""

from __future__ import annotations

CODES: dict[int, str] = {
    1: "Message Header Error",
    2: "OPEN Message Error",
    3: "UPDATE Message Error",
    4: "Hold Timer Expired",
    5: "Finite State Machine Error",
    6: "Cease",
    7: "ROUTE-REFRESH Message Error",
}

SUBCODES: dict[int, dict[int, str]] = {
    1: {1: "Connection Not Synchronized", 2: "Bad Message Length", 3: "Bad Message Type"},
    2: {
        1: "Unsupported Version Number",
        2: "Bad Peer AS",
        3: "Bad BGP Identifier",
        4: "Unsupported Optional Parameter",
        6: "Unacceptable Hold Time",
        7: "Unsupported Capability",
    },
    3: {
        1: "Malformed Attribute List",
        2: "Unrecognized Well-known Attribute",
        3: "Missing Well-known Attribute",
        4: "Attribute Flags Error",
        5: "Attribute Length Error",
        6: "Invalid ORIGIN Attribute",
        8: "Invalid NEXT_HOP Attribute",
        9: "Optional Attribute Error",
        10: "Invalid Network Field",
        11: "Malformed AS_PATH",
    },
    5: {
        1: "Receive Unexpected Message in OpenSent State",
        2: "Receive Unexpected Message in OpenConfirm State",
        3: "Receive Unexpected Message in Established State",
    },
    6: {
        1: "Maximum Number of Prefixes Reached",
        2: "Administrative Shutdown",
        3: "Peer De-configured",
        4: "Administrative Reset",
        5: "Connection Rejected",
        6: "Other Configuration Change",
        7: "Connection Collision Resolution",
        8: "Out of Resources",
    },
    7: {1: "Invalid Message Length"},
}


def notification_text(code: int, subcode: int, data: bytes = b"") -> str:
    name = CODES.get(code, f"code {code}")
    sub = SUBCODES.get(code, {}).get(subcode)
    text = f"{name}/{sub}" if sub else (f"{name}" if subcode == 0 else f"{name}/subcode {subcode}")
    if code == 6 and subcode in (2, 4) and data:
        length = data[0]
        message = bytes(data[1 : 1 + length]).decode("utf-8", "replace")
        if message:
            text += f": {message!r}"
    elif code == 6 and subcode == 1 and len(data) >= 7:
        afi = int.from_bytes(data[0:2], "big")
        limit = int.from_bytes(data[3:7], "big")
        text += f" (AFI {afi}, limit {limit})"
    return text
