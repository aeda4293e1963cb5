"""OCI's own tools against a running daemon: a throwaway API key, the real `oci` CLI, the real SDK.

The key is a fresh RSA-2048 key and every OCID of the "user" is made up: without ``api.oci_keys``
a loopback daemon accepts signed requests without verifying them, and the clients only check the
shapes (oci-api.md); the tests of signature checking pass a configured key (``tests/support/auth.py``).
The CLI runs as a subprocess with ``--no-retry`` and a bounded time, with its
home directory in the test's temporary directory; the SDK client is synchronous, so tests call it
through ``asyncio.to_thread`` while the daemon runs on the test's event loop. :class:`Api` is plain
HTTP, for the tests of the API layer itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import oci
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from multidict import CIMultiDict

from controlplane import Drg
from tests.support.paths import EXAMPLES
from tests.support.ports import free_port

USER = "ocid1.user.oc1..aaaaemulatortestuser"
TENANCY = "ocid1.tenancy.oc1..aaaaemulatortesttenancy"
FINGERPRINT = ":".join(["4f"] * 16)
REGION = "us-ashburn-1"
COMPARTMENT = TENANCY
DRG = "ocid1.drg.emu.drg1.drg1"
OCI = Path(sys.executable).with_name("oci")
T = TypeVar("T")


def oid(resource: str, name: str, drg: str = "drg1") -> str:
    """An id of the example DRG, or of DRG ``drg`` (product.md: ``ocid1.<resource>.emu.<drg>.<name>``)."""
    return f"ocid1.{resource}.emu.{drg}.{name}"


def regions_file(tmp: Path) -> Path:
    """examples/two-regions.yaml byte for byte (comments and all) but for free listener ports, in ``tmp``."""
    text = (EXAMPLES / "two-regions.yaml").read_text()
    for default in ("127.0.0.1:1790", "127.0.0.1:8790"):
        assert text.count(f"listen: {default}") == 1
        text = text.replace(f"listen: {default}", f"listen: 127.0.0.1:{free_port()}")
    path = tmp / "two-regions.yaml"
    path.write_text(text)
    return path


def make_key(directory: Path) -> tuple[Path, str]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path = directory / "oci_api_key.pem"
    path.write_text(pem)
    path.chmod(0o600)
    return path, pem


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def data(self) -> Any:
        return json.loads(self.stdout)["data"] if self.stdout.strip() else None

    @property
    def doc(self) -> dict[str, Any]:
        result: dict[str, Any] = json.loads(self.stdout)
        return result


class Api:
    """Plain HTTP to the daemon's API (unsigned unless a test sends an Authorization header)."""

    def __init__(self, drg: Drg, path: Path | None) -> None:
        self.drg = drg
        self.path = path
        self.base = f"http://{drg.daemon.config.api.listen}"
        self.session = aiohttp.ClientSession()

    async def request(self, method: str, path: str, body: Any = None,
                      headers: dict[str, str] | None = None) -> tuple[int, Any, CIMultiDict[str]]:
        data = body if isinstance(body, str | bytes) else (json.dumps(body) if body is not None else None)
        async with self.session.request(method, self.base + path, data=data, headers=headers) as response:
            text = await response.text()
            body = json.loads(text) if text and response.content_type == "application/json" else text or None
            return response.status, body, CIMultiDict(response.headers)


@contextlib.asynccontextmanager
async def running_api(path: Path) -> AsyncIterator[Api]:
    """A daemon started from ``path`` and a plain HTTP client of its API; both stopped on exit."""
    drg = Drg(path)
    await drg.start()
    client = Api(drg, path)
    try:
        yield client
    finally:
        await client.session.close()
        await drg.stop()


class OciCli:
    """``oci ... --endpoint http://API --no-retry`` (``api`` may be an https:// URL) with credentials from
    the environment only."""

    def __init__(self, directory: Path, api: str, key: tuple[Path, str] | None = None) -> None:
        """``key``: (private key file, fingerprint) of a configured key (default: a throwaway key)."""
        key_path, fingerprint = key or (make_key(directory)[0], FINGERPRINT)
        home = directory / "oci-home"
        home.mkdir(exist_ok=True)
        self.api = api
        self.env = {**os.environ, "HOME": str(home), "OCI_CLI_USER": USER, "OCI_CLI_TENANCY": TENANCY,
                    "OCI_CLI_FINGERPRINT": fingerprint, "OCI_CLI_KEY_FILE": str(key_path),
                    "OCI_CLI_REGION": REGION, "SUPPRESS_LABEL_WARNING": "True",
                    "OCI_CLI_SUPPRESS_FILE_PERMISSIONS_WARNING": "True"}

    def run(self, *args: str) -> CliResult:
        endpoint = self.api if "://" in self.api else f"http://{self.api}"
        done = subprocess.run([str(OCI), *args, "--endpoint", endpoint, "--no-retry"],
                              env=self.env, capture_output=True, text=True, timeout=90, check=False)
        return CliResult(done.returncode, done.stdout, done.stderr)

    async def __call__(self, *args: str) -> CliResult:
        return await asyncio.to_thread(self.run, *args)

    async def ok(self, *args: str) -> Any:
        """The ``data`` of a command that must succeed."""
        result = await self(*args)
        assert result.returncode == 0, f"oci {' '.join(args)}: {result.stderr}"
        return result.data


def sdk_client(directory: Path, api: str, *, retries: bool = False,
               key: tuple[str, str] | None = None) -> oci.core.VirtualNetworkClient:
    """A VirtualNetworkClient on the daemon; ``retries=False`` bounds every call to one request;
    ``key``: (private PEM, fingerprint) of a configured key (default: a throwaway key)."""
    pem, fingerprint = key or (make_key(directory)[1], FINGERPRINT)
    config = {"user": USER, "tenancy": TENANCY, "fingerprint": fingerprint, "key_content": pem, "region": REGION}
    kwargs: dict[str, Any] = {"service_endpoint": f"http://{api}"}
    if not retries:
        kwargs["retry_strategy"] = oci.retry.NoneRetryStrategy()
    return oci.core.VirtualNetworkClient(config, **kwargs)


async def call(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """One synchronous SDK call, off the event loop the daemon runs on."""
    return await asyncio.to_thread(fn, *args, **kwargs)


def expected_rule(rule: dict[str, Any], sdk: bool = False) -> tuple[Any, ...]:
    """A rule of ``drg routes --json`` as OCI's tools show it (the SDK maps the emulator's LOOPBACK
    provenance, outside OCI's enum, to UNKNOWN_ENUM_VALUE; attributes keep it)."""
    provenance = rule["routeProvenance"]
    shown = provenance if provenance in ("STATIC", "VCN", "VIRTUAL_CIRCUIT", "IPSEC_TUNNEL") else \
        "UNKNOWN_ENUM_VALUE"
    path = " ".join(str(a) for a in rule["asPath"])
    return (rule["destination"], rule["nextHopDrgAttachmentId"], rule["routeType"], shown, rule["isConflict"],
            rule["isBlackhole"], rule["nextHop"], path, "true" if rule["isEcmp"] else "false")


def cli_rule(rule: dict[str, Any]) -> tuple[Any, ...]:
    a = rule["attributes"]
    return (rule["destination"], rule["next-hop-drg-attachment-id"], rule["route-type"], rule["route-provenance"],
            rule["is-conflict"], rule["is-blackhole"], a["nextHop"], a["asPath"], a["isEcmp"])


def sdk_rule(rule: Any) -> tuple[Any, ...]:
    a = rule.attributes
    return (rule.destination, rule.next_hop_drg_attachment_id, rule.route_type, rule.route_provenance,
            rule.is_conflict, rule.is_blackhole, a["nextHop"], a["asPath"], a["isEcmp"])
