"""A client of a running daemon's control API (``/v1``), over HTTP or HTTPS, with its bearer token.

    client = ControlClient("https://drg.lab:8790", ca_file="api-cert.pem")   # token: found as below
    client.get("/v1/routes"); client.post("/v1/apply", {"config": text, "file": "lab.yaml"})
    for event in client.events(): ...

``drg`` uses it for every command that talks to the daemon. How it works: ``api`` is ``HOST:PORT``
(plain HTTP, as before), ``http://HOST:PORT`` or ``https://HOST:PORT`` (TLS, verified with the
system's CAs or ``ca_file``/``$DRG_CA_FILE``, host name included). The token, sent as
``Authorization: Bearer``, is the first of: ``token``; ``token_file``; ``$DRG_TOKEN``;
``$DRG_TOKEN_FILE``; the default file ``$XDG_CONFIG_HOME/drg/token`` (``~/.config/drg/token``) if
it exists. Without one no header is sent (a loopback daemon without a token needs none). Requests
use the standard library only (``urllib``), so the CLI starts fast.
"""

from __future__ import annotations

import json
import os
import ssl
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, BinaryIO


class ClientError(Exception):
    """Why a request got no answer: ``kind`` ``unreachable`` (no daemon answers), ``tls`` (its certificate
    does not verify) or ``auth`` (401: the token is missing or wrong); ``status`` an HTTP error's."""

    def __init__(self, message: str, kind: str = "unreachable", status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.status = status


def default_token_file(environ: Mapping[str, str] | None = None) -> Path:
    """``$XDG_CONFIG_HOME/drg/token``, else ``~/.config/drg/token``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME") or str(Path(env.get("HOME") or Path.home()) / ".config")
    return Path(base) / "drg" / "token"


def find_token(token: str | None = None, token_file: str | Path | None = None,
               environ: Mapping[str, str] | None = None) -> str | None:
    """The bearer token to send (see the module's order); OSError if a named file cannot be read."""
    env = os.environ if environ is None else environ
    if token:
        return token
    if token_file is not None:
        return Path(token_file).expanduser().read_text().strip()
    if env.get("DRG_TOKEN"):
        return env["DRG_TOKEN"].strip()
    if env.get("DRG_TOKEN_FILE"):
        return Path(env["DRG_TOKEN_FILE"]).expanduser().read_text().strip()
    default = default_token_file(env)
    return default.read_text().strip() if default.is_file() else None


def _error_document(exc: urllib.error.HTTPError) -> Any:
    """The JSON body of an HTTP error answer, or ``{"error": its text}`` when it is not JSON."""
    payload = exc.read()
    exc.close()
    try:
        return json.loads(payload)
    except json.JSONDecodeError:
        return {"error": payload.decode(errors="replace")}


class ControlClient:
    """The control API of one daemon: ``api`` as ``HOST:PORT``, ``http://...`` or ``https://...``."""

    def __init__(self, api: str = "127.0.0.1:8790", *, token: str | None = None,
                 token_file: str | Path | None = None, ca_file: str | Path | None = None,
                 timeout: float = 30.0) -> None:
        self.api = api
        self.base = api.rstrip("/") if "://" in api else f"http://{api}"
        if not self.base.startswith(("http://", "https://")):
            raise ValueError(f"--api {api}: write HOST:PORT, http://HOST:PORT or https://HOST:PORT")
        self.token = find_token(token, token_file)
        ca = ca_file if ca_file is not None else os.environ.get("DRG_CA_FILE") or None
        self.context = ssl.create_default_context(cafile=str(ca) if ca is not None else None) \
            if self.base.startswith("https://") else None
        self.timeout = timeout

    def _open(self, path: str, body: Any = None, timeout: float | None = None) -> Any:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.base + path, data=data, method="POST" if data is not None else "GET")
        request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=timeout, context=self.context)
        except urllib.error.HTTPError as exc:
            if exc.code == 401:
                exc.close()
                hint = "the token was refused" if self.token else "it needs a token"
                raise ClientError(f"the daemon at {self.api} answered 401: {hint}; give --token-file FILE (the "
                                  "daemon's api.token_file), or set DRG_TOKEN or DRG_TOKEN_FILE", "auth", 401) from None
            raise
        except (urllib.error.URLError, ssl.SSLError) as exc:
            reason = getattr(exc, "reason", exc)
            if isinstance(reason, ssl.SSLError):
                raise ClientError(f"TLS with the daemon at {self.api} failed ({reason}); give --ca-file FILE (its "
                                  "certificate or CA) or DRG_CA_FILE, and the host name or address its "
                                  "certificate names", "tls") from exc
            raise ClientError(f"no DRG daemon answers at {self.api} ({reason})") from exc
        except (ConnectionError, TimeoutError) as exc:
            raise ClientError(f"no DRG daemon answers at {self.api} ({getattr(exc, 'reason', exc)})") from exc

    def request(self, path: str, body: Any = None) -> tuple[int, Any]:
        """(status, JSON document) of a GET, or of a POST of ``body``; an HTTP error's body is returned too."""
        try:
            with self._open(path, body, self.timeout) as response:
                return int(response.status), json.loads(response.read() or b"null")
        except urllib.error.HTTPError as exc:
            return exc.code, _error_document(exc)

    def stream(self, path: str, out: BinaryIO, chunk: int = 1 << 20) -> tuple[int, str | None]:
        """GET ``path`` and copy the body to ``out`` as it arrives: (status, None), or (status, the error
        message) when the daemon answers an HTTP error (nothing is written then)."""
        try:
            with self._open(path, None, self.timeout) as response:
                while data := response.read1(chunk):
                    out.write(data)
                return int(response.status), None
        except urllib.error.HTTPError as exc:
            doc = _error_document(exc)
            return exc.code, str(doc.get("error") if isinstance(doc, dict) else doc)

    def get(self, path: str) -> Any:
        status, doc = self.request(path)
        if status >= 400:
            raise ClientError(str(doc.get("error") if isinstance(doc, dict) else doc), "http", status)
        return doc

    def post(self, path: str, body: Any) -> tuple[int, Any]:
        return self.request(path, body)

    def events(self) -> Iterator[dict[str, Any]]:
        """``/v1/events``: one event after the other until the daemon closes the stream."""
        with self._open("/v1/events") as response:
            for raw in response:
                event: dict[str, Any] = json.loads(raw)
                yield event
