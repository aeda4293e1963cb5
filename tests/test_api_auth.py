"""Who may talk to the daemon: a non-loopback listener needs credentials and TLS; the control API's token.

Non-loopback listeners are only ever validated, never bound: the file is refused by ``drg validate``
and by ``drg run`` before any socket is opened. The token tests run a daemon on loopback with
``api.token_file``: the file is generated with mode 0600, ``/v1`` without the token is 401 and
changes nothing, and ``drg`` finds the token by ``--token-file``, ``DRG_TOKEN`` or the default file.
The TLS test serves the API on 127.0.0.1 with a certificate made in the test; ``drg`` reaches it with
``--api https://... --ca-file``.
"""

from __future__ import annotations

import asyncio
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from controlplane import Drg
from controlplane.auth import load_api_auth, read_or_make_token
from controlplane.client import ClientError, ControlClient
from controlplane.config.api import ApiSection, OciKey, is_loopback
from controlplane.config.load import parse_config
from controlplane.config.problems import ConfigError
from tests.support.auth import make_api_key, self_signed
from tests.support.lab import lab_file
from tests.support.oci import Api, running_api
from tests.support.paths import ROOT
from tests.support.ports import free_port, port_busy

pytestmark = pytest.mark.timeout(120)

TOKEN = "s3cret-token-of-the-test-0123456789"


def problems(text: str) -> list[tuple[str, str | None, str, str, str]]:
    try:
        parse_config(text, "drg.yaml")
    except ConfigError as exc:
        return [(p.object, p.field, p.rule, p.message, p.fix) for p in exc.problems]
    return []


def api_file(api: dict[str, Any]) -> str:
    return yaml.safe_dump({"drg": {"name": "drg1", "router_id": "10.0.0.1"}, "api": api})


# ---- the configuration ----------------------------------------------------------------------------

@pytest.mark.parametrize("listen", ["0.0.0.0:8790", "192.0.2.1:8790", "[::]:8790", "drg.example:8790"])
def test_a_non_loopback_listener_without_credentials_is_refused_with_how_to_set_it_up(listen: str) -> None:
    [(obj, field, rule, message, fix)] = problems(api_file({"listen": listen}))
    assert (obj, field, rule) == ("api", "listen", "auth") and "not a loopback address" in message
    assert "api.token_file" in fix and "api.oci_keys" in fix and "api.tls_cert" in fix and "127.0.0.1" in fix
    [(obj, field, rule, message, fix)] = problems(api_file({"listen": listen, "token_file": "token"}))
    assert (obj, field, rule) == ("api", "tls_cert", "auth") and "no TLS" in message and "openssl req" in fix
    exposed = {"listen": listen, "tls_cert": "c.pem", "tls_key": "k.pem"}
    assert problems(api_file({**exposed, "token": "env:DRG_TOKEN"})) == []
    key_id = "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/" + ":".join(["ab"] * 16)
    assert problems(api_file({**exposed, "oci_keys": [{"key_id": key_id, "public_key_file": "k.pub"}]})) == []


@pytest.mark.parametrize("listen", ["127.0.0.1:8790", "127.9.9.9:1", "[::1]:8790", "localhost:8790"])
def test_loopback_listeners_stay_open_without_credentials(listen: str) -> None:
    assert is_loopback(listen) and problems(api_file({"listen": listen})) == []


def test_the_api_block_is_checked_whole() -> None:
    key_id = "ocid1.tenancy.oc1..t/ocid1.user.oc1..u/" + ":".join(["ab"] * 16)
    bad: dict[str, tuple[dict[str, Any], str]] = {
        "token and token_file": ({"token": TOKEN, "token_file": "t"}, "token"),
        "short token": ({"token": "short"}, "token"),
        "token with a space": ({"token": "a" * 10 + " " + "b" * 10}, "token"),
        "half TLS": ({"tls_cert": "c.pem"}, "tls_key"),
        "key_id": ({"oci_keys": [{"key_id": "a/b/c", "public_key": "x"}]}, "oci_keys[0].key_id"),
        "no key": ({"oci_keys": [{"key_id": key_id}]}, "oci_keys[0].public_key_file"),
        "twice": ({"oci_keys": [{"key_id": key_id, "public_key": "x"}] * 2}, "oci_keys"),
    }
    for why, (api, field) in bad.items():
        found = problems(api_file(api))
        assert [(o, f) for o, f, *_ in found] == [("api", field)], why


def test_drg_run_refuses_a_non_loopback_listener_before_binding_anything(tmp_path: Path) -> None:
    port, bgp = free_port(), free_port()
    path = tmp_path / "drg.yaml"
    path.write_text(yaml.safe_dump({"drg": {"name": "drg1"}, "speaker": {"listen": f"127.0.0.1:{bgp}"},
                                    "api": {"listen": f"0.0.0.0:{port}"}}))
    out = drg("run", str(path), env=clean_env(tmp_path))
    assert out.returncode == 1
    assert "is rejected, nothing was started" in out.stderr and "api.listen: api.listen 0.0.0.0" in out.stderr
    assert "fix: add api.token_file" in out.stderr
    assert not port_busy(bgp) and not port_busy(port)
    out = drg("validate", str(path), env=clean_env(tmp_path))
    assert out.returncode == 1 and "not a loopback address" in out.stdout


async def test_credential_files_are_checked_at_startup_before_any_socket(tmp_path: Path) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN + "\n")
    token.chmod(0o644)
    key = make_api_key(tmp_path)
    wrong = key.key_id.rsplit("/", 1)[0] + "/" + ":".join(["00"] * 16)
    api = ApiSection(token_file="token", tls_cert="missing.pem", tls_key="missing-key.pem",
                     oci_keys=[OciKey(key_id=wrong, public_key_file=str(key.public_file)),
                               OciKey(key_id=key.key_id, public_key_file="nope.pem")])
    with pytest.raises(ConfigError) as refused:
        load_api_auth(api, tmp_path / "drg.yaml")
    found = {p.field: p for p in refused.value.problems}
    assert set(found) == {"token_file", "oci_keys[0].key_id", "oci_keys[1].public_key_file", "tls_cert"}
    assert "mode 0644" in found["token_file"].message and "chmod 600" in found["token_file"].fix
    assert key.fingerprint in found["oci_keys[0].key_id"].fix
    assert all(p.object == "api" and p.rule == "auth" and p.file.endswith("drg.yaml") for p in found.values())
    with pytest.raises(ConfigError, match="DRG_TEST_TOKEN"):
        load_api_auth(ApiSection(token="env:DRG_TEST_TOKEN"), None, environ={})
    assert load_api_auth(ApiSection(token="env:DRG_TEST_TOKEN"), None, environ={"DRG_TEST_TOKEN": TOKEN}).token == TOKEN

    # Through the daemon: refused before the BGP or API socket is opened.
    path = lab_file("transport-mode", tmp_path, lambda doc: doc["api"].update(token_file=str(token)))
    drg = Drg(path)
    with pytest.raises(ConfigError, match="mode 0644"):
        await drg.start()
    doc = yaml.safe_load(path.read_text())
    for listen in (doc["speaker"]["listen"], doc["api"]["listen"]):
        assert not port_busy(int(listen.rsplit(":", 1)[1]))


# ---- the control API's token --------------------------------------------------------------------------

def drg(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "controlplane", *args], capture_output=True, text=True, timeout=30,
                          cwd=ROOT, env=env, check=False)


def clean_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DRG_") and k != "XDG_CONFIG_HOME"}
    return {**env, "HOME": str(home)}


async def test_control_api_needs_the_generated_token_and_drg_finds_it(tmp_path: Path) -> None:
    token_file = tmp_path / "conf" / "drg" / "token"
    path = lab_file("transport-mode", tmp_path, lambda doc: doc["api"].update(token_file="conf/drg/token"))
    async with running_api(path) as api:
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        assert stat.S_IMODE(token_file.parent.stat().st_mode) == 0o700
        token = token_file.read_text().strip()
        assert len(token) >= 32 and read_or_make_token(token_file) == (token, False)
        await _only_with_the_token(api, token)
        await _drg_cli_with_the_token(api, token_file, tmp_path)
    async with running_api(path) as api:  # a restart reads the same token
        status, _, _ = await api.request("GET", "/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert status == 200


async def _only_with_the_token(api: Api, token: str) -> None:
    text, routes = (api.path or Path()).read_bytes(), api.drg.daemon.routes_json()
    changed = yaml.safe_load(text)
    changed["route_tables"][0]["ecmp"] = not changed["route_tables"][0].get("ecmp", False)
    body = {"config": yaml.safe_dump(changed), "file": "x.yaml"}
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}, {"Authorization": token}):
        for method, where, sent in (("GET", "/v1/routes", None), ("GET", "/v1/status", None),
                                    ("POST", "/v1/apply", body), ("GET", "/v1/events", None)):
            status, answer, got = await api.request(method, where, sent, headers=headers)
            assert (status, got.get("WWW-Authenticate")) == (401, 'Bearer realm="drg"'), (where, headers)
            assert "token" in answer["error"]
    assert api.drg.daemon.routes_json() == routes and (api.path or Path()).read_bytes() == text
    status, answer, _ = await api.request("GET", "/v1/routes", headers={"Authorization": f"Bearer {token}"})
    assert status == 200 and answer == routes
    status, _, _ = await api.request("GET", "/v1/status", headers={"Authorization": f"bearer {token}"})
    assert status == 200  # RFC 6750: the scheme is case-insensitive
    status, answer, _ = await api.request("GET", "/20160918/drgs?compartmentId=x")  # loopback, no keys: open
    assert status == 200


async def _drg_cli_with_the_token(api: Api, token_file: Path, tmp_path: Path) -> None:
    listen = api.base.removeprefix("http://")
    env = clean_env(tmp_path / "home")
    out = await asyncio.to_thread(drg, "routes", "--api", listen, env=env)
    assert out.returncode == 2 and "401" in out.stderr and "--token-file" in out.stderr
    for args, extra in ((["--token-file", str(token_file)], {}),
                        ([], {"DRG_TOKEN": token_file.read_text().strip()}),
                        ([], {"DRG_TOKEN_FILE": str(token_file)}),
                        ([], {"XDG_CONFIG_HOME": str(tmp_path / "conf")})):  # the default file
        out = await asyncio.to_thread(drg, "sessions", "--json", "--api", listen, *args, env={**env, **extra})
        assert out.returncode == 0, (args, extra, out.stderr)
    out = await asyncio.to_thread(drg, "apply", str(api.path), "--api", listen, "--token-file", str(token_file),
                                  env=env)
    assert out.returncode == 0, out.stderr


# ---- TLS ------------------------------------------------------------------------------------------------

async def test_a_tls_listener_with_a_token_answers_drg_over_https(tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)

    def edit(doc: dict[str, Any]) -> None:
        doc["api"].update(token=TOKEN, tls_cert=cert.name, tls_key=key.name)  # relative to the file

    async with running_api(lab_file("transport-mode", tmp_path, edit)) as api:
        listen = api.drg.daemon.config.api.listen
        env = clean_env(tmp_path / "home")
        out = await asyncio.to_thread(drg, "sessions", "--api", f"https://{listen}", "--ca-file", str(cert),
                                      env={**env, "DRG_TOKEN": TOKEN})
        assert out.returncode == 0, out.stderr
        out = await asyncio.to_thread(drg, "sessions", "--api", f"https://{listen}", env={**env, "DRG_TOKEN": TOKEN})
        assert out.returncode == 3 and "TLS" in out.stderr and "--ca-file" in out.stderr
        out = await asyncio.to_thread(drg, "sessions", "--api", listen, env={**env, "DRG_TOKEN": TOKEN})  # plain HTTP
        assert out.returncode == 3
        client = ControlClient(f"https://{listen}", token=TOKEN, ca_file=cert)
        assert (await asyncio.to_thread(client.get, "/v1/status"))["drg"] == "drg1"
        with pytest.raises(ClientError) as refused:
            await asyncio.to_thread(ControlClient(f"https://{listen}", token="x" * 20, ca_file=cert).get, "/v1/status")
        assert refused.value.kind == "auth"
