"""OCI's request signatures on the OCI API: only a configured key's correct, fresh signature changes anything.

The signature check alone (``oci/signature.py``) is driven with requests signed here the SDK's way
and spoiled one way at a time. Then a daemon whose ``api.oci_keys`` lists one key runs on loopback:
unsigned, wrongly signed, stale (replayed), unknown-key and wrong-body-digest requests each get OCI's
``401 NotAuthenticated`` and leave the file and the route tables as they were; the real ``oci`` CLI
and SDK signed with the configured key list and add a rule; the SDK with another key is refused.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import oci
import pytest

from controlplane.auth import ApiAuth
from controlplane.oci.signature import MAX_SKEW, NotAuthenticated, verify
from tests.support.auth import ApiKey, make_api_key, self_signed, signed_headers
from tests.support.lab import drg_cli, lab_file
from tests.support.oci import Api, OciCli, call, running_api, sdk_client

pytestmark = pytest.mark.timeout(120)

BASE = "/20160918"
RT_IPSEC = "ocid1.drgroutetable.emu.drg1.rt-ipsec"
ATT_VCN = "ocid1.drgattachment.emu.drg1.att-vcn"
ADD = f"{BASE}/drgRouteTables/{RT_IPSEC}/actions/addDrgRouteRules"
LIST = f"{BASE}/drgRouteTables/{RT_IPSEC}/drgRouteRules"
HOST = "127.0.0.1:8790"


def add_body(destination: str) -> bytes:
    return json.dumps({"routeRules": [{"destinationType": "CIDR_BLOCK", "destination": destination,
                                       "nextHopDrgAttachmentId": ATT_VCN}]}).encode()


# ---- the check alone ------------------------------------------------------------------------------

def _verify(key: ApiKey, method: str, target: str, headers: dict[str, str], body: bytes = b"") -> str:
    return verify(method, target, {k.lower(): v for k, v in headers.items()}, body,
                  {key.key_id: key.private.public_key()})


def test_a_correct_signature_verifies_and_each_spoiled_one_is_refused(tmp_path: Path) -> None:
    key, other = make_api_key(tmp_path), make_api_key(tmp_path, "other")
    body = add_body("10.99.0.0/24")
    query = LIST + "?routeType=STATIC"
    assert _verify(key, "GET", query, signed_headers(key.private, key.key_id, "GET", query, HOST)) == key.key_id
    good = signed_headers(key.private, key.key_id, "POST", ADD, HOST, body)
    assert _verify(key, "POST", ADD, good, body) == key.key_id

    old = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=MAX_SKEW + 60)
    future = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=MAX_SKEW + 60)
    spoiled: dict[str, tuple[str, str, dict[str, str], bytes]] = {
        "unsigned": ("POST", ADD, {"date": good["date"], "host": HOST}, body),
        "bearer": ("GET", LIST, {"authorization": "Bearer abc", "host": HOST}, b""),
        "other key": ("POST", ADD, signed_headers(other.private, key.key_id, "POST", ADD, HOST, body), body),
        "unknown keyId": ("POST", ADD, signed_headers(other.private, other.key_id, "POST", ADD, HOST, body), body),
        "stale date": ("POST", ADD, signed_headers(key.private, key.key_id, "POST", ADD, HOST, body, date=old), body),
        "future date": ("GET", LIST, signed_headers(key.private, key.key_id, "GET", LIST, HOST, date=future), b""),
        "body digest": ("POST", ADD, signed_headers(key.private, key.key_id, "POST", ADD, HOST, body,
                                                    digest_of=add_body("10.66.0.0/24")), body),
        "body swapped": ("POST", ADD, good, add_body("10.66.0.0/24")),
        "body unsigned": ("POST", ADD, signed_headers(key.private, key.key_id, "POST", ADD, HOST, body,
                                                      names=["date", "(request-target)", "host"]), body),
        "no date signed": ("GET", LIST, signed_headers(key.private, key.key_id, "GET", LIST, HOST,
                                                       names=["(request-target)", "host"]), b""),
        "other path": ("POST", ADD.replace("add", "remove"), good, body),
        "other method": ("PUT", ADD, good, body),
        "hmac": ("GET", LIST, {**good, "authorization": good["authorization"].replace("rsa-sha256", "hmac-sha256")},
                 b""),
        "garbage": ("GET", LIST, {**good, "authorization": 'Signature keyId="x",,signature'}, b""),
    }
    for why, (method, target, headers, sent) in spoiled.items():
        with pytest.raises(NotAuthenticated):
            _verify(key, method, target, headers, sent)
            pytest.fail(f"{why}: accepted")


# ---- a daemon with a configured key -------------------------------------------------------------

@pytest.fixture
async def signed(tmp_path: Path) -> AsyncIterator[tuple[Api, ApiKey]]:
    key = make_api_key(tmp_path / "keys")
    path = lab_file("transport-mode", tmp_path, lambda doc: doc["api"].update(oci_keys=[key.config()]))
    async with running_api(path) as api:
        yield api, key


def _routes(api: Api) -> Any:
    return api.drg.daemon.routes_json()


async def test_refused_requests_get_oci_401_and_change_nothing(signed: tuple[Api, ApiKey], tmp_path: Path,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    api, key = signed
    assert api.path is not None
    text, routes = api.path.read_bytes(), _routes(api)
    host = api.base.removeprefix("http://")
    other = make_api_key(tmp_path / "other")
    body = add_body("10.99.0.0/24")
    stale = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=10)
    attempts = {  # what is wrong -> what the daemon logs
        "no Authorization": {"content-type": "application/json"},
        "does not verify": signed_headers(other.private, key.key_id, "POST", ADD, host, body),
        "is not one of api.oci_keys": signed_headers(other.private, other.key_id, "POST", ADD, host, body),
        "stale or replayed": signed_headers(key.private, key.key_id, "POST", ADD, host, body, date=stale),
        "x-content-sha256 is not": signed_headers(key.private, key.key_id, "POST", ADD, host, body,
                                                  digest_of=add_body("10.66.0.0/24")),
    }
    for why, headers in attempts.items():
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="controlplane.oci.api"):
            status, answer, got = await api.request("POST", ADD, body, headers=headers)
        assert status == 401, why
        assert answer["code"] == "NotAuthenticated" and set(answer) == {"code", "message"}, why
        assert got["opc-request-id"]
        assert [r.getMessage() for r in caplog.records if why in r.getMessage()], why
    status, answer, _ = await api.request("GET", f"{BASE}/drgs?compartmentId=x")  # reads too
    assert (status, answer["code"]) == (401, "NotAuthenticated")
    assert api.path.read_bytes() == text and _routes(api) == routes
    assert not api.path.with_suffix(".yaml.bak").exists()
    out = await call(drg_cli, "routes", "--json", "--api", host)  # the control API: no token, open
    assert out.returncode == 0 and json.loads(out.stdout) == routes

    # The same request signed right is applied.
    status, answer, _ = await api.request("POST", ADD, body, headers=signed_headers(key.private, key.key_id, "POST",
                                                                                    ADD, host, body))
    assert status == 200 and [r["destination"] for r in answer] == ["10.99.0.0/24"]
    assert api.path.read_bytes() != text


async def test_the_real_oci_cli_and_sdk_signed_with_a_configured_key_work(signed: tuple[Api, ApiKey],
                                                                          tmp_path: Path) -> None:
    api, key = signed
    host = api.base.removeprefix("http://")
    (tmp_path / "cli").mkdir()
    cli = OciCli(tmp_path / "cli", host, key=(key.private_file, key.fingerprint))
    before = await cli.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC)
    added = await cli.ok("network", "drg-route-rule", "add", "--drg-route-table-id", RT_IPSEC, "--route-rules",
                         json.dumps([{"destinationType": "CIDR_BLOCK", "destination": "10.98.0.0/24",
                                      "nextHopDrgAttachmentId": ATT_VCN}]))
    assert [r["destination"] for r in added] == ["10.98.0.0/24"]
    assert "10.98.0.0/24" in (api.path or Path()).read_text()
    rules = await cli.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC,
                         "--route-type", "STATIC")  # a signed query string
    assert len(rules) == len([r for r in before if r["route-type"] == "STATIC"]) + 1

    client = sdk_client(tmp_path, host, key=(key.pem, key.fingerprint))
    table = await call(client.get_drg_route_table, RT_IPSEC)
    assert table.data.id == RT_IPSEC
    (tmp_path / "x").mkdir()
    stranger = sdk_client(tmp_path / "x", host)  # a throwaway key the daemon does not know
    with pytest.raises(oci.exceptions.ServiceError) as refused:
        await call(stranger.get_drg_route_table, RT_IPSEC)
    assert (refused.value.status, refused.value.code) == (401, "NotAuthenticated")


async def test_off_loopback_without_keys_the_oci_api_refuses_everything(tmp_path: Path) -> None:
    """A listener the daemon believes exposed (its auth says not loopback; the socket is still 127.0.0.1)."""
    from controlplane.control import ControlServer, build_app
    from tests.support.ports import free_port

    async with running_api(lab_file("transport-mode", tmp_path)) as api:
        port = free_port()
        server = ControlServer(build_app(api.drg.daemon, auth=ApiAuth(token="t" * 20, loopback=False)),
                               "127.0.0.1", port)
        await server.start()
        try:
            base = f"http://127.0.0.1:{port}"
            async with api.session.get(f"{base}{BASE}/drgs?compartmentId=x") as r:
                assert (r.status, (await r.json())["code"]) == (401, "NotAuthenticated")
            async with api.session.get(f"{base}/v1/status") as r:
                assert r.status == 401
            async with api.session.get(f"{base}/v1/status", headers={"Authorization": "Bearer " + "t" * 20}) as r:
                assert r.status == 200
        finally:
            await server.stop()


async def test_the_oci_cli_over_tls_with_a_configured_key(tmp_path: Path) -> None:
    key = make_api_key(tmp_path / "keys")
    cert, cert_key = self_signed(tmp_path)

    def edit(doc: dict[str, Any]) -> None:
        doc["api"].update(oci_keys=[key.config()], tls_cert=str(cert), tls_key=str(cert_key))

    async with running_api(lab_file("transport-mode", tmp_path, edit)) as api:
        listen = api.drg.daemon.config.api.listen
        cli = OciCli(tmp_path, f"https://{listen}", key=(key.private_file, key.fingerprint))
        refused = await cli("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC)  # no CA
        assert refused.returncode != 0 and "SSLException" in refused.stderr
        cli.env["REQUESTS_CA_BUNDLE"] = str(cert)  # the CLI's --cert-bundle is not honoured with --endpoint
        rules = await cli.ok("network", "drg-route-rule", "list", "--drg-route-table-id", RT_IPSEC)
        assert [r["destination"] for r in rules] == [r["destination"] for r in
                                                     api.drg.route_table("rt-ipsec")["rules"]]
