"""The HTTP side of OCI's REST API, shared by every handler of ``oci/api.py``: replies and request values.

How it works: handlers raise :class:`~controlplane.oci.requests.OciError` (``invalid``, ``missing``)
for a bad request value and return what these helpers build. A reply is JSON; a single resource
carries an ``etag`` (:func:`single`); a list is a bare array cut by :func:`paged` from ``limit`` and
``page``, where the page token is the opaque (base64) offset of the next item and ``opc-next-page``
is set while items remain. :func:`sorted_items` and :func:`filtered` apply OCI's ``sortBy``/
``sortOrder`` and equality filters before paging. :func:`parse_key_id` reads the ``keyId`` of a
signed request's Authorization header for the log of an open API (verifying is ``oci/signature.py``'s).
Nothing here knows the daemon.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from aiohttp import web

from controlplane.oci import views as m
from controlplane.oci.requests import invalid, missing

# ---------------------------------------------------------------------------------------------- replies


def reply(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(text=json.dumps(data), status=status, content_type="application/json",
                        headers=headers)


def error(status: int, code: str, message: str) -> web.Response:
    """OCI's error body ``{"code", "message"}``."""
    return reply({"code": code, "message": message}, status)


def single(doc: dict[str, Any]) -> web.Response:
    """One resource, with its ``etag``."""
    return reply(doc, headers={"etag": m.etag(doc)})


def parse_key_id(authorization: str | None) -> str | None:
    """The ``keyId`` of an OCI ``Signature ...`` Authorization header (``tenancy/user/fingerprint``)."""
    if not authorization:
        return None
    fields = dict(re.findall(r'(\w+)="([^"]*)"', authorization))
    return fields.get("keyId")


# ---------------------------------------------------------------------------------------------- lists

def _limit(request: web.Request) -> int | None:
    text = request.query.get("limit")
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise invalid(f"limit must be an integer, not {text!r}") from None
    if value < 1:
        raise invalid(f"limit must be at least 1, not {value}")
    return value


def _page_token(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode().rstrip("=")


def _page_offset(token: str) -> int:
    try:
        text = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
        kind, _, value = text.partition(":")
        offset = int(value)
        if kind != "offset" or offset < 0:
            raise ValueError(text)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise invalid(f"page {token!r} is not a page token of this list (use opc-next-page)") from None
    return offset


def paged(request: web.Request, items: list[dict[str, Any]]) -> web.Response:
    """One page of a list: ``limit`` items from the ``page`` token on; ``opc-next-page`` if more remain."""
    limit = _limit(request)
    token = request.query.get("page")
    start = _page_offset(token) if token else 0
    end = len(items) if limit is None else start + limit
    headers = {"opc-next-page": _page_token(end)} if end < len(items) else {}
    return reply(items[start:end], headers=headers)


def sorted_items(request: web.Request, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """sortBy TIMECREATED (every object has the daemon's start time: configuration order) or DISPLAYNAME;
    sortOrder ASC or DESC."""
    sort_by = request.query.get("sortBy")
    order = request.query.get("sortOrder")
    if sort_by not in (None, "TIMECREATED", "DISPLAYNAME"):
        raise invalid(f"sortBy must be TIMECREATED or DISPLAYNAME, not {sort_by!r}")
    if order not in (None, "ASC", "DESC"):
        raise invalid(f"sortOrder must be ASC or DESC, not {order!r}")
    out = sorted(items, key=lambda i: str(i.get("displayName") or "")) if sort_by == "DISPLAYNAME" else list(items)
    return out[::-1] if order == "DESC" else out


def filtered(request: web.Request, items: list[dict[str, Any]], **fields: str) -> list[dict[str, Any]]:
    """Equality filters: query parameter -> JSON field (``displayName``, ``lifecycleState``, ...)."""
    for param, key in fields.items():
        wanted = request.query.get(param)
        if wanted is not None:
            items = [i for i in items if i.get(key) == wanted]
    return items


def dig(doc: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` in nested objects (None where a key is missing)."""
    value: Any = doc
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


# ---------------------------------------------------------------------------------------------- request values

def required(request: web.Request, name: str) -> str:
    value = request.query.get(name)
    if not value:
        raise missing(f"the query parameter {name} is required")
    return value


async def json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise invalid(f"the request body is not JSON: {exc}") from None
    if not isinstance(body, dict):
        raise invalid("the request body must be a JSON object")
    return body


def list_field(body: dict[str, Any], name: str) -> list[Any]:
    value = body.get(name)
    if value is None:
        raise missing(f"the body needs {name}")
    if not isinstance(value, list):
        raise invalid(f"{name} must be a list")
    return value
