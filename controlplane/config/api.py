"""The ``api`` block: where the control and OCI APIs listen, and who may talk to them.

How it works: :class:`ApiSection` checks shapes only (no file is read here: ``controlplane/auth.py``
reads the token file, the public keys and the TLS files when the daemon starts). Its one rule across
fields: a listener on an address other than loopback must authenticate its callers and speak TLS,
else the whole file is rejected with the fix, before any socket is opened.

    api:
      listen: 0.0.0.0:8790
      token_file: ~/.config/drg/token   # control API bearer token; generated (mode 0600) if absent
      # token: env:DRG_TOKEN            # or: the daemon's environment variable / a literal (>= 16 chars)
      tls_cert: api-cert.pem            # TLS (required off loopback); paths relative to this file
      tls_key: api-key.pem
      oci_keys:                         # public keys that may sign OCI API requests
        - key_id: ocid1.tenancy.oc1..x/ocid1.user.oc1..y/12:34:...   # tenancy/user/fingerprint
          public_key_file: oci_api_key_public.pem                      # or public_key: PEM text

On loopback an API without credentials stays open (the control API without a token, the OCI API
without keys); credentials, once configured, are enforced on loopback too. Off loopback an API
whose credentials are not configured refuses every request.
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import model_validator

from controlplane.config.fields import HostPort, StrictModel, rule_error, split_host_port

DEFAULT_TOKEN_FILE = "~/.config/drg/token"  # what the error's fix suggests; drg reads it by default
_TOKEN_RE = re.compile(r"^[!-~]{16,512}$")  # printable ASCII, no space: a header-safe bearer token
_ENV_RE = re.compile(r"^env:([A-Za-z_][A-Za-z0-9_]*)$")
_OCID_RE = re.compile(r"^([0-9a-zA-Z-_]+[.:])([0-9a-zA-Z-_]*[.:]){3,}([0-9a-zA-Z-_]+)$")  # OCI's client check
_FINGERPRINT_RE = re.compile(r"^[0-9a-f]{2}(:[0-9a-f]{2}){15}$")


def is_loopback(listen: str) -> bool:
    """Whether ``HOST:PORT`` names a loopback address (127.0.0.0/8, ::1, localhost)."""
    host = split_host_port(listen)[0]
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False  # a name may resolve to anything
    mapped = getattr(address, "ipv4_mapped", None)
    return bool(address.is_loopback or (mapped is not None and mapped.is_loopback))


def token_env(token: str | None) -> str | None:
    """The environment variable of ``token: env:NAME``, else None."""
    match = _ENV_RE.match(token or "")
    return match.group(1) if match else None


class OciKey(StrictModel):
    """One API signing key the OCI API accepts: OCI's ``keyId`` and its public key (PEM)."""

    key_id: str
    public_key_file: str | None = None
    public_key: str | None = None

    @model_validator(mode="after")
    def _check(self) -> OciKey:
        parts = self.key_id.split("/")
        if len(parts) != 3 or not all(_OCID_RE.match(p) for p in parts[:2]) \
                or not _FINGERPRINT_RE.match(parts[2]):
            raise rule_error("schema", f"key_id {self.key_id!r} is not TENANCY_OCID/USER_OCID/FINGERPRINT",
                             "write the keyId the OCI CLI signs with: tenancy OCID, user OCID and the key's "
                             "fingerprint (16 lower-case hex pairs joined by ':'), separated by '/'",
                             field="key_id")
        if (self.public_key_file is None) == (self.public_key is None):
            raise rule_error("schema", "an OCI key needs exactly one of public_key_file and public_key",
                             "give the PEM public key's path in public_key_file (or its text in public_key)",
                             field="public_key_file")
        return self


class ApiSection(StrictModel):
    listen: HostPort = "127.0.0.1:8790"
    token: str | None = None  # the control API's bearer token: a literal, or env:NAME
    token_file: str | None = None  # the file holding it; generated (0600) on first start
    tls_cert: str | None = None  # PEM certificate (chain) of the listener
    tls_key: str | None = None  # its PEM private key
    oci_keys: list[OciKey] = []

    @model_validator(mode="after")
    def _check(self) -> ApiSection:
        if self.token is not None and self.token_file is not None:
            raise rule_error("schema", "api.token and api.token_file both give the control API's token",
                             "keep one of them", object="api", field="token")
        if self.token is not None and not (_TOKEN_RE.match(self.token) or token_env(self.token)):
            raise rule_error("schema", "api.token must be env:NAME or 16-512 printable ASCII characters "
                             "without spaces", "write e.g. token: env:DRG_TOKEN, or use token_file "
                             f"(e.g. {DEFAULT_TOKEN_FILE}, generated on first start)", object="api", field="token")
        if (self.tls_cert is None) != (self.tls_key is None):
            raise rule_error("schema", "api.tls_cert and api.tls_key go together",
                             "give both the certificate and its private key (PEM files)", object="api",
                             field="tls_key" if self.tls_key is None else "tls_cert")
        ids = [k.key_id for k in self.oci_keys]
        if len(set(ids)) != len(ids):
            twice = next(i for i in ids if ids.count(i) > 1)
            raise rule_error("schema", f"api.oci_keys lists key_id {twice} twice", "list each key once",
                             object="api", field="oci_keys")
        if not is_loopback(self.listen):
            self._check_exposed()
        return self

    def _check_exposed(self) -> None:
        """Off loopback: some credential, and TLS (a bearer token must not cross a network in clear)."""
        if self.token is None and self.token_file is None and not self.oci_keys:
            raise rule_error(
                "auth", f"api.listen {self.listen} is not a loopback address: the control API and the OCI API "
                "would change routing and rewrite this file for anyone who reaches it",
                f"add api.token_file: {DEFAULT_TOKEN_FILE} (a token generated on first start, read by drg), "
                "api.oci_keys for OCI's CLI and SDK, and api.tls_cert/api.tls_key; or listen on 127.0.0.1",
                object="api", field="listen")
        if self.tls_cert is None:
            raise rule_error(
                "auth", f"api.listen {self.listen} is not a loopback address and has no TLS: its token and "
                "requests would cross the network in clear",
                "add api.tls_cert and api.tls_key (PEM files; e.g. openssl req -x509 -newkey rsa:2048 -nodes "
                "-keyout api-key.pem -out api-cert.pem -subj /CN=HOST -addext subjectAltName=IP:ADDRESS); "
                "or listen on 127.0.0.1", object="api", field="tls_cert")
