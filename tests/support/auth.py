"""Credentials for the tests of who may talk to the daemon: OCI API keys, a request signer, a TLS cert.

:class:`ApiKey` is an RSA key pair with OCI's fingerprint and keyId, written as the files the OCI
CLI and the daemon's ``api.oci_keys`` read. :func:`signed_headers` signs a request the way OCI's
SDK does (draft-cavage, rsa-sha256; body headers on POST/PUT), with knobs to get it wrong on purpose.
:func:`self_signed` makes a certificate for 127.0.0.1 with ``cryptography``.
"""

from __future__ import annotations

import base64
import datetime as dt
import email.utils
import hashlib
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from controlplane.auth import fingerprint
from tests.support.oci import TENANCY, USER


@dataclass
class ApiKey:
    private: rsa.RSAPrivateKey
    private_file: Path
    public_file: Path

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.private.public_key())

    @property
    def key_id(self) -> str:
        return f"{TENANCY}/{USER}/{self.fingerprint}"

    @property
    def pem(self) -> str:
        return self.private_file.read_text()

    def config(self) -> dict[str, str]:
        """Its ``api.oci_keys`` entry."""
        return {"key_id": self.key_id, "public_key_file": str(self.public_file)}


def make_api_key(directory: Path, name: str = "oci_api_key") -> ApiKey:
    directory.mkdir(parents=True, exist_ok=True)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private_file, public_file = directory / f"{name}.pem", directory / f"{name}_public.pem"
    private_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    private_file.chmod(0o600)
    public_file.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                          serialization.PublicFormat.SubjectPublicKeyInfo))
    return ApiKey(key, private_file, public_file)


def signed_headers(key: rsa.RSAPrivateKey, key_id: str, method: str, target: str, host: str, body: bytes = b"",
                   *, date: dt.datetime | None = None, digest_of: bytes | None = None,
                   names: list[str] | None = None) -> dict[str, str]:
    """The headers OCI's SDK sends for this request, signed by ``key`` as ``key_id``; ``date`` (default
    now), ``digest_of`` (the body the digest claims, default ``body``) and ``names`` (the signed
    headers) can be set wrong."""
    headers = {"date": email.utils.format_datetime(date or dt.datetime.now(dt.UTC), usegmt=True), "host": host}
    default = ["date", "(request-target)", "host"]
    if method.upper() in ("POST", "PUT", "PATCH"):
        headers |= {"content-type": "application/json", "content-length": str(len(body)),
                    "x-content-sha256": base64.b64encode(hashlib.sha256(
                        body if digest_of is None else digest_of).digest()).decode()}
        default += ["content-length", "content-type", "x-content-sha256"]
    names = names or default
    lines = [f"(request-target): {method.lower()} {target}" if n == "(request-target)" else f"{n}: {headers[n]}"
             for n in names]
    signature = key.sign("\n".join(lines).encode(), padding.PKCS1v15(), hashes.SHA256())
    headers["authorization"] = (f'Signature version="1",keyId="{key_id}",algorithm="rsa-sha256",'
                                f'headers="{" ".join(names)}",signature="{base64.b64encode(signature).decode()}"')
    return headers


def self_signed(directory: Path, host: str = "127.0.0.1") -> tuple[Path, Path]:
    """A self-signed certificate naming ``host`` (IP SAN) and its key: (cert file, key file)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = directory / "api-cert.pem", directory / "api-key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                           serialization.NoEncryption()))
    key_file.chmod(0o600)
    return cert_file, key_file
