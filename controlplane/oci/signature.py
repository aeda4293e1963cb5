"""OCI's request signatures (draft-cavage HTTP Signatures, version 1), verified against configured keys.

How it works: OCI's SDKs and CLI sign every request with the user's RSA key:

    authorization: Signature version="1",keyId="<tenancy>/<user>/<fingerprint>",algorithm="rsa-sha256",
                   headers="date (request-target) host[ content-length content-type x-content-sha256]",
                   signature="<base64 RSA PKCS#1 v1.5 SHA-256 of the signing string>"

The signing string is one ``name: value`` line per name of ``headers`` in that order, joined by
``\\n``; ``(request-target)`` is ``<method lower-case> <path?query as sent>``. :func:`verify` checks,
in order: the header's form and ``algorithm="rsa-sha256"``; that ``keyId`` is a configured key; that
the signed names cover ``date`` (or ``x-date``), ``(request-target)`` and ``host``, and on a body
method (POST, PUT, PATCH) ``content-length``, ``content-type`` and ``x-content-sha256``, as OCI
requires; that ``date`` is within :data:`MAX_SKEW` of now (a captured request cannot be replayed
later); that ``x-content-sha256`` is the base64 SHA-256 of the body received and ``content-length``
its length (a body cannot be swapped under a valid signature); and the RSA signature itself. Any
failure raises :class:`NotAuthenticated` with the reason (logged by the API; the client gets OCI's
generic 401). Signatures are not remembered: a request replayed within the skew window is accepted,
as OCI itself does.

No library is used for the scheme: the maintained Python ones implement RFC 9421 only
(``http-message-signatures``), and the draft-cavage ones are unmaintained and pull in PyCryptodome
(``httpsig``, 2018) or are archived (``httpsig_cffi``, vendored privately by the OCI SDK); RSA is
``cryptography``'s.
"""

from __future__ import annotations

import base64
import binascii
import email.utils
import hashlib
import re
from collections.abc import Mapping
from datetime import UTC, datetime

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

MAX_SKEW = 300.0  # seconds between the request's date and the daemon's clock (OCI: 5 minutes)
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
GENERIC = ("(request-target)", "host")
BODY = ("content-length", "content-type", "x-content-sha256")
_PARAM = re.compile(r'\s*([A-Za-z]+)="([^"]*)"\s*(?:,|$)')


class NotAuthenticated(Exception):
    """A request that does not prove it comes from a configured key (the reason is for the log)."""


def parse_authorization(value: str | None) -> dict[str, str]:
    """The parameters of ``Signature k="v",...`` (NotAuthenticated if it is not one)."""
    if not value:
        raise NotAuthenticated("no Authorization header (the request is not signed)")
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "signature":
        raise NotAuthenticated(f"Authorization scheme {scheme!r} is not Signature")
    params: dict[str, str] = {}
    pos = 0
    rest = rest.strip()
    while pos < len(rest):
        match = _PARAM.match(rest, pos)
        if match is None or match.group(1) in params:
            raise NotAuthenticated("malformed Signature parameters")
        params[match.group(1)] = match.group(2)
        pos = match.end()
    for name in ("keyId", "signature"):
        if not params.get(name):
            raise NotAuthenticated(f"the Signature has no {name}")
    if params.get("algorithm", "rsa-sha256").lower() != "rsa-sha256":
        raise NotAuthenticated(f"algorithm {params['algorithm']!r} is not rsa-sha256")
    if params.get("version", "1") != "1":
        raise NotAuthenticated(f"signature version {params['version']!r} is not 1")
    return params


def signing_string(names: list[str], method: str, target: str, headers: Mapping[str, str]) -> bytes:
    """The lines the client signed; NotAuthenticated if a named header is absent."""
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        elif name in headers:
            lines.append(f"{name}: {headers[name]}")
        else:
            raise NotAuthenticated(f"signed header {name} is not in the request")
    try:
        return "\n".join(lines).encode("ascii")
    except UnicodeEncodeError:
        raise NotAuthenticated("a signed header is not ASCII") from None


def _check_date(headers: Mapping[str, str], names: list[str], now: datetime) -> None:
    name = "date" if "date" in names else "x-date"
    try:
        sent = email.utils.parsedate_to_datetime(headers.get(name, ""))
    except (TypeError, ValueError):
        raise NotAuthenticated(f"{name} {headers.get(name)!r} is not an HTTP date") from None
    if sent.tzinfo is None:
        sent = sent.replace(tzinfo=UTC)
    skew = abs((now - sent).total_seconds())
    if skew > MAX_SKEW:
        raise NotAuthenticated(f"{name} is {skew:.0f} s away from the daemon's clock (at most {MAX_SKEW:.0f} s: "
                               "a stale or replayed request, or a wrong clock)")


def _check_body(headers: Mapping[str, str], body: bytes) -> None:
    try:
        claimed = base64.b64decode(headers.get("x-content-sha256", ""), validate=True)
    except binascii.Error:
        raise NotAuthenticated("x-content-sha256 is not base64") from None
    if claimed != hashlib.sha256(body).digest():
        raise NotAuthenticated("x-content-sha256 is not the SHA-256 of the body received")
    if headers.get("content-length") != str(len(body)):
        raise NotAuthenticated("content-length is not the length of the body received")


def verify(method: str, target: str, headers: Mapping[str, str], body: bytes, keys: Mapping[str, RSAPublicKey],
           now: datetime | None = None) -> str:
    """The keyId of a request correctly signed by one of ``keys``; NotAuthenticated otherwise.

    ``headers`` must look names up case-insensitively (aiohttp's do); ``target`` is the path and
    query exactly as received."""
    params = parse_authorization(headers.get("authorization"))
    key_id = params["keyId"]
    key = keys.get(key_id)
    if key is None:
        raise NotAuthenticated(f"keyId {key_id} is not one of api.oci_keys")
    names = params.get("headers", "date").lower().split()
    required = [*GENERIC, *(BODY if method.upper() in BODY_METHODS else ())]
    missing = [n for n in required if n not in names]
    if "date" not in names and "x-date" not in names:
        missing.insert(0, "date")
    if missing:
        raise NotAuthenticated(f"the signature does not cover {', '.join(missing)}")
    message = signing_string(names, method, target, headers)
    try:
        signature = base64.b64decode(params["signature"], validate=True)
        key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
    except (binascii.Error, InvalidSignature):
        raise NotAuthenticated(f"the signature does not verify with the key of {key_id}") from None
    _check_date(headers, names, now or datetime.now(UTC))
    if method.upper() in BODY_METHODS:
        _check_body(headers, body)
    return key_id
