"""The API listener's credentials, read when the daemon starts: token, OCI public keys, TLS context.

How it works: :func:`load_api_auth` turns the ``api`` block (``config/api.py``, shapes already
checked) into an :class:`ApiAuth`, reading files relative to the configuration file's directory
(``~`` expanded). Every problem is collected and raised at once as a
:class:`~controlplane.config.problems.ConfigError` (object ``api``, rule ``auth``) before any socket
is opened, so ``drg run`` prints them like any other configuration error.

- The control API's bearer token: ``api.token`` (a literal, or ``env:NAME``: that variable of the
  daemon's environment), or ``api.token_file``. A missing token file is generated on first start:
  32 random bytes (``secrets.token_urlsafe``), created with ``O_EXCL`` and mode 0600 (its directory
  0700); an existing one must not be readable by group or others (like ssh's keys).
- OCI keys: each ``oci_keys[]`` entry's PEM public key (RSA, at least 2048 bits); the fingerprint in
  its ``key_id`` must be the key's own (OCI's: MD5 of the DER SubjectPublicKeyInfo, as the console
  and ``openssl rsa -pubout -outform DER | openssl md5 -c`` show it), so a wrong file is caught here.
- TLS: a server ``ssl.SSLContext`` (TLS 1.2 or later) with ``tls_cert`` and ``tls_key``.

``open_control`` and ``open_oci`` say whether an API without credentials answers anyone: only on
loopback (``config/api.py``).
"""

from __future__ import annotations

import hashlib
import os
import secrets
import ssl
import stat
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from controlplane.config.api import ApiSection, OciKey, is_loopback, token_env
from controlplane.config.problems import ConfigError, Problem

MIN_RSA_BITS = 2048


@dataclass
class ApiAuth:
    """Who may use the listener: the control API's token, the OCI API's keys by keyId, TLS."""

    token: str | None = None
    oci_keys: dict[str, RSAPublicKey] = field(default_factory=dict)
    ssl: ssl.SSLContext | None = None
    loopback: bool = True
    token_file: Path | None = None  # where the token was read or generated (for the log)
    generated: bool = False

    @property
    def open_control(self) -> bool:
        """The control API answers without a token (loopback, none configured)."""
        return self.token is None and self.loopback

    @property
    def open_oci(self) -> bool:
        """The OCI API answers unsigned requests (loopback, no key configured)."""
        return not self.oci_keys and self.loopback


def fingerprint(key: RSAPublicKey) -> str:
    """OCI's API key fingerprint: MD5 of the DER SubjectPublicKeyInfo, as colon-separated hex pairs."""
    der = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    digest = hashlib.md5(der, usedforsecurity=False).hexdigest()
    return ":".join(digest[i:i + 2] for i in range(0, 32, 2))


class _Loader:
    def __init__(self, api: ApiSection, source: Path | None, environ: dict[str, str]) -> None:
        self.api = api
        self.file = str(source) if source is not None else "<api>"
        self.base = source.parent if source is not None else Path.cwd()
        self.environ = environ
        self.problems: list[Problem] = []

    def problem(self, fld: str, message: str, fix: str) -> None:
        self.problems.append(Problem(self.file, "api", fld, "auth", message, fix))

    def path(self, value: str) -> Path:
        path = Path(value).expanduser()
        return path if path.is_absolute() else self.base / path

    def token(self, auth: ApiAuth) -> None:
        api = self.api
        name = token_env(api.token)
        if name is not None:
            value = self.environ.get(name, "").strip()
            if len(value) < 16 or any(not "!" <= c <= "~" for c in value):
                self.problem("token", f"api.token is env:{name}, and ${name} is unset, shorter than 16 "
                             "characters or not printable ASCII", f"export {name}=$(openssl rand -hex 32) before "
                             "starting the daemon, or use api.token_file")
            auth.token = value
        elif api.token is not None:
            auth.token = api.token
        elif api.token_file is not None:
            auth.token_file = self.path(api.token_file)
            try:
                auth.token, auth.generated = read_or_make_token(auth.token_file)
            except (OSError, ValueError) as exc:
                self.problem("token_file", f"token file {auth.token_file}: {_why(exc)}",
                             "fix the file (one line, 16+ characters, mode 0600: chmod 600 FILE), or delete it "
                             "and the daemon generates a new one")

    def key(self, index: int, entry: OciKey) -> RSAPublicKey | None:
        where = f"oci_keys[{index}]"
        try:
            pem = entry.public_key.encode() if entry.public_key is not None else \
                self.path(str(entry.public_key_file)).read_bytes()
            key = serialization.load_pem_public_key(pem)
        except OSError as exc:
            self.problem(f"{where}.public_key_file", f"cannot read {entry.public_key_file}: {_why(exc)}",
                         "give the path of the PEM public key (relative to this file)")
            return None
        except ValueError:
            self.problem(f"{where}.public_key", "not a PEM public key (-----BEGIN PUBLIC KEY-----)",
                         "export it with: openssl rsa -in oci_api_key.pem -pubout -out oci_api_key_public.pem")
            return None
        if not isinstance(key, RSAPublicKey) or key.key_size < MIN_RSA_BITS:
            self.problem(f"{where}.public_key", "OCI API keys are RSA keys of 2048 bits or more",
                         "use the public half of the RSA key the OCI CLI signs with")
            return None
        own = fingerprint(key)
        if entry.key_id.rsplit("/", 1)[1] != own:
            self.problem(f"{where}.key_id", f"the fingerprint in key_id is not this key's ({own})",
                         f"end key_id with /{own}, and set fingerprint={own} in the OCI CLI's config")
            return None
        return key

    def tls(self) -> ssl.SSLContext | None:
        api = self.api
        if api.tls_cert is None or api.tls_key is None:
            return None
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.path(api.tls_cert), self.path(api.tls_key))
        except (OSError, ssl.SSLError) as exc:
            self.problem("tls_cert", f"cannot load {api.tls_cert} with {api.tls_key}: {_why(exc)}",
                         "give a PEM certificate and its unencrypted PEM private key (paths relative to this file)")
            return None
        return context


def load_api_auth(api: ApiSection, source: Path | None, environ: dict[str, str] | None = None) -> ApiAuth:
    """The credentials of ``api`` (ConfigError listing every problem; may generate the token file)."""
    loader = _Loader(api, source, dict(os.environ if environ is None else environ))
    auth = ApiAuth(loopback=is_loopback(api.listen))
    loader.token(auth)
    for i, entry in enumerate(api.oci_keys):
        key = loader.key(i, entry)
        if key is not None:
            auth.oci_keys[entry.key_id] = key
    auth.ssl = loader.tls()
    if loader.problems:
        raise ConfigError(loader.problems)
    return auth


def read_or_make_token(path: Path) -> tuple[str, bool]:
    """The token in ``path``, or a new one written there (0600, directory 0700); (token, generated)."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(token + "\n")
        return token, True
    with os.fdopen(fd) as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise ValueError(f"group or others may read it (mode {stat.S_IMODE(mode):04o})")
        token = f.read().strip()
    if len(token) < 16 or any(not "!" <= c <= "~" for c in token):
        raise ValueError("it does not hold a token of 16+ printable ASCII characters")
    return token, False


def _why(exc: BaseException) -> str:
    return str(exc.strerror) if isinstance(exc, OSError) and exc.strerror else str(exc)
