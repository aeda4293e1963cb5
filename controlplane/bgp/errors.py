"""The one exception the codec raises: an error that must end the session with a NOTIFICATION.

``BGPError`` carries exactly what goes into the NOTIFICATION (code, subcode, data) plus a reason
for humans. Errors RFC 7606 lets the session survive ("treat-as-withdraw", "attribute discard")
are NOT exceptions: they come back inside the decoded UPDATE. So a caller needs one ``except``:

    try:
        msg = decode_message(kind, body, negotiated)
    except BGPError as err:
        send(Notification(err.code, err.subcode, err.data)); close()
"""

from __future__ import annotations

from controlplane.bgp.constants import error_name

__all__ = ["BGPError"]


class BGPError(Exception):
    """A protocol error: send NOTIFICATION ``code``/``subcode`` with ``data``, then close."""

    code: int
    subcode: int
    data: bytes
    reason: str

    def __init__(self, code: int, subcode: int, data: bytes = b"", reason: str = "") -> None:
        self.code = code
        self.subcode = subcode
        self.data = bytes(data)
        self.reason = reason
        super().__init__(code, subcode, self.data, reason)

    def __str__(self) -> str:
        text = f"BGP error {self.code}/{self.subcode} ({error_name(self.code, self.subcode)})"
        if self.reason:
            text += f": {self.reason}"
        if self.data:
            shown = self.data[:32].hex()
            text += f" [data {shown}{'...' if len(self.data) > 32 else ''}]"
        return text

    def __repr__(self) -> str:
        return f"BGPError({self.code}, {self.subcode}, {self.data!r}, {self.reason!r})"
