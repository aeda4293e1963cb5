"""Interop: decode what a real ExaBGP 5.0.15 sends, and keep it as vectors.

One ExaBGP process runs two neighbors that both connect to a raw asyncio listener on 127.0.0.1:
127.0.0.2 gets an OPEN with the 4-octet AS and extended message capabilities, 127.0.0.3 a plain
2-octet one (so ExaBGP must use AS_TRANS and AS4_PATH). Each connection records ExaBGP's OPEN and
every message up to the End-of-RIB of both families, then the test decodes them with our codec.

``CODEC_UPDATE_VECTORS=1`` rewrites ``tests/vectors/exabgp-5.0.15.ci`` from the capture; the
vector tests (``test_codec_vectors.py``) then check the same expectations (``tests/support/vectors.py``)
without ExaBGP.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

import pytest

from controlplane.bgp.constants import HEADER_LEN, MAX_MESSAGE_LEN
from controlplane.bgp.messages import (
    Negotiated,
    Open,
    Update,
    decode_message,
    encode,
    encode_keepalive,
    negotiate,
    parse_header,
)
from tests.support.paths import ROOT
from tests.support.vectors import CAPTURE_FILE, CAPTURE_SESSIONS, check_capture, our_open, write_vectors

EXABGP = ROOT / ".venv" / "bin" / "exabgp"

ROUTES_IPV4 = [
    "192.0.2.0/24 next-hop 127.0.0.2 as-path [ 65001 64512 ] med 100 community [ 65001:100 31898:200 ]"
    " extended-community [ target:65001:100 ] large-community [ 65001:1:2 ]",
    "198.51.100.0/24 next-hop 127.0.0.2 origin egp as-path [ 65001 4200000000 ] atomic-aggregate"
    " aggregator ( 4200000000:127.0.0.9 )",
    "203.0.113.128/25 next-hop 127.0.0.2 origin incomplete as-path [ 65001 ] ( 64600 64601 )",
]
ROUTES_IPV6 = ["2001:db8:1::/48 next-hop ::ffff:127.0.0.2 med 50"]

CONFIG = (
    """\
template {
    neighbor codec {
        local-as 65001;
        peer-as 31898;
        hold-time 30;
        family { ipv4 unicast; ipv6 unicast; }
        capability { route-refresh; graceful-restart 120; }
        announce {
            ipv4 {
"""
    + "".join(f"                unicast {route};\n" for route in ROUTES_IPV4)
    + """\
            }
            ipv6 {
"""
    + "".join(f"                unicast {route};\n" for route in ROUTES_IPV6)
    + """\
            }
        }
    }
}
neighbor 127.0.0.1 { inherit codec; router-id 127.0.0.2; local-address 127.0.0.2; connect PORT; }
neighbor 127.0.0.1 { inherit codec; router-id 127.0.0.3; local-address 127.0.0.3; connect PORT; }
"""
)


async def read_raw(reader: asyncio.StreamReader, max_len: int) -> bytes:
    header = await reader.readexactly(HEADER_LEN)
    length, _ = parse_header(header, max_len)
    return header + await reader.readexactly(length - HEADER_LEN)


async def record_session(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, session: str
) -> list[bytes]:
    """ExaBGP's OPEN and everything after it up to both End-of-RIB markers."""
    raw_open = await read_raw(reader, MAX_MESSAGE_LEN)
    theirs = decode_message(raw_open[18], raw_open[HEADER_LEN:], Negotiated())
    assert isinstance(theirs, Open)
    mine = our_open(session)
    writer.write(encode(mine, Negotiated()) + encode_keepalive())
    await writer.drain()
    negotiated = negotiate(mine, theirs)
    captured = [raw_open]
    pending = {(1, 1), (2, 1)}
    while pending:
        raw = await read_raw(reader, negotiated.max_message_len)
        captured.append(raw)
        message = decode_message(raw[18], raw[HEADER_LEN:], negotiated)
        if isinstance(message, Update) and message.end_of_rib is not None:
            pending.discard(message.end_of_rib)
    return captured


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM to ExaBGP's process group, SIGKILL if it is still there after 5 s."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), timeout=5)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()


async def capture(tmp_path: Path) -> dict[str, list[bytes]]:
    results: dict[str, list[bytes]] = {}
    failures: list[BaseException] = []
    finished = asyncio.Event()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        session = CAPTURE_SESSIONS.get(writer.get_extra_info("peername")[0])
        try:
            if session is not None and session not in results:
                results[session] = await record_session(reader, writer, session)
                if len(results) == len(CAPTURE_SESSIONS):
                    finished.set()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # ExaBGP may reconnect; the retry is recorded instead
        except Exception as exc:  # a decoding failure: report it instead of waiting for the timeout
            failures.append(exc)
            finished.set()
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()

    log_path = tmp_path / "exabgp.log"
    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        port = server.sockets[0].getsockname()[1]
        conf = tmp_path / "capture.conf"
        conf.write_text(CONFIG.replace("PORT", str(port)))
        env = {**os.environ, "exabgp_daemon_user": "root", "exabgp_api_cli": "false"}
        with log_path.open("wb") as log:
            proc = await asyncio.create_subprocess_exec(
                str(EXABGP), "server", str(conf), env=env, stdout=log, stderr=log, start_new_session=True
            )
            try:
                await asyncio.wait_for(finished.wait(), timeout=30)
            except TimeoutError:
                raise AssertionError(
                    f"no capture in 30 s; ExaBGP said:\n{log_path.read_text()[-3000:]}"
                ) from None
            finally:
                await stop(proc)
    finally:
        server.close()
        await server.wait_closed()
    if failures:
        raise failures[0]
    return results


@pytest.mark.interop
@pytest.mark.timeout(60)
@pytest.mark.skipif(not EXABGP.exists(), reason="needs .venv/bin/exabgp")
async def test_decode_exabgp_capture(tmp_path: Path) -> None:
    results = await capture(tmp_path)
    assert set(results) == {"asn4", "asn2"}
    check_capture(results)
    if os.environ.get("CODEC_UPDATE_VECTORS") == "1":
        items = [
            (f"{name}.{index}", raw) for name in ("asn4", "asn2") for index, raw in enumerate(results[name])
        ]
        write_vectors(
            CAPTURE_FILE, items, "Captured from ExaBGP 5.0.15 by tests/test_codec_exabgp_capture.py."
        )
