"""The web console the daemon serves under ``/`` (issue 15), in a real headless Chromium against a lab.

Without a browser: the page, its static files and ``/v1/config`` are served next to ``/v1`` and OCI's
API; the route-table pager filters and slices (``console/pages.py``) and spares the daemon's loop
while routes churn; the event stream sends the bus's backlog, then live events, and ends when the
daemon stops; with ``api.token`` the console's data wants the bearer token (the page asks for it).
In Chromium (``tests/support/browser.py``; skipped where Debian's ``chromium`` is missing), against
the TransportMode lab with its ExaBGP peers: the topology shows every attachment with its session
and tunnel state and is reachable from the keyboard; the edge withdrawing the CPE route turns both
tunnels DOWN in the open page without a reload; the seed's outbound walk is drawn as its four hops
with the ESP outer header, the return walk with DECRYPT, and a drop with its reason. A VC peer that
sends 100,000 routes gives a table that renders one page at a time and filters. Waits are bounded;
nothing is timed. ``CONSOLE_SCREENSHOTS=docs`` writes the README's pictures.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml

from bench.blaster import blast
from controlplane import Drg
from controlplane.console.app import STATIC
from controlplane.console.pages import RulePages
from controlplane.engine.drgs import Drgs
from controlplane.engine.engine import RouteEngine
from controlplane.prefix import AFI_IPV4
from tests.support.browser import chromium_page, needs_chromium, screenshot
from tests.support.factory import dist, drg, engine, keys, table, vc_att, vcn, vcn_att
from tests.support.lab import Running, lab_file
from tests.support.ports import free_port

WAIT = 15_000  # ms: the bound of every wait in the page


# ---- without a browser ------------------------------------------------------------------------------


@pytest.fixture
async def quiet(tmp_path: Path) -> AsyncIterator[Drg]:
    """The TransportMode daemon alone (no peers), on free ports."""
    drg = Drg(lab_file("transport-mode", tmp_path))
    await drg.start()
    try:
        yield drg
    finally:
        await drg.stop()


def _api(drg: Drg) -> str:
    return str(drg.daemon.config.api.listen)


@pytest.mark.timeout(60)
async def test_the_page_and_its_files_are_served_beside_the_api(quiet: Drg) -> None:
    base = f"http://{_api(quiet)}"
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{base}/") as r:
            assert r.status == 200 and r.content_type == "text/html"
            html = await r.text()
        assert "/console/static/main.js" in html
        for name in ("main.js", "stream.js", "topology.js", "trace.js", "tables.js", "sessions.js", "util.js",
                     "console.css"):
            async with http.get(f"{base}/console/static/{name}") as r:
                assert r.status == 200, name
        async with http.get(f"{base}/v1/config") as r:
            doc = await r.json()
        assert {a["name"] for a in doc["config"]["attachments"]} >= {"att-vcn", "att-vc1", "att-tun1", "att-tun1-lb"}
        async with http.get(f"{base}/v1/status") as r:  # the API keeps its paths
            assert (await r.json())["drg"] == "drg1"
        async with http.get(f"{base}/console/api/routes?table=no-such") as r:
            assert r.status == 404
    # offline: nothing is fetched from elsewhere (no CDN, no external font)
    for path in STATIC.iterdir():
        text = path.read_text()
        assert "https://" not in text and "http://" not in text.replace("http://www.w3.org/2000/svg", ""), path.name


def _vc_table(announced: list[str]) -> tuple[Drgs, RouteEngine]:
    """rt-vc, importing nothing but vc1's routes (VCN v1 uses it)."""
    e = engine(drg([vcn_att("v1", "n1", "rt-vc"), vc_att("vc1", 0)], [table("rt-vc", "rd-vc")],
                   [dist("rd-vc", "VIRTUAL_CIRCUIT")], [vcn("n1", "192.168.0.0/24")]))
    e.announce("vc1", AFI_IPV4, keys(*announced), [65001])
    return Drgs({"drg1": e}, False), e


async def test_route_pages_filter_by_prefix_and_slice() -> None:
    drgs, _ = _vc_table([f"10.{i // 256}.{i % 256}.0/24" for i in range(1000)] + ["10.0.0.0/8"])
    pages = RulePages(drgs)
    first = await pages.page("rt-vc", None, "", 0, 100)
    assert (first["total"], first["matched"], len(first["rules"])) == (1001, 1001, 100)
    assert first["rules"][0]["destination"] == "10.0.0.0/8"  # dump order: by address, then length
    assert [r["destination"] for r in (await pages.page("rt-vc", None, "", 1000, 100))["rules"]] == ["10.3.231.0/24"]
    block = await pages.page("rt-vc", None, "10.1.0.0/16", 0, 500)  # inside the block, and what covers it
    assert block["matched"] == 257 and {"10.1.255.0/24", "10.0.0.0/8"} <= {r["destination"] for r in block["rules"]}
    address = await pages.page("rt-vc", None, "10.2.3.4", 0, 100)
    assert [r["destination"] for r in address["rules"]] == ["10.0.0.0/8", "10.2.3.0/24"]
    typed = await pages.page("rt-vc", None, "10.3.23.", 0, 100)
    assert [r["destination"] for r in typed["rules"]] == ["10.3.23.0/24"]
    assert (await pages.page("rt-vc", None, "192.168.", 0, 100))["matched"] == 0


async def test_a_changing_table_is_read_again_at_most_once_per_duty_window(monkeypatch: pytest.MonkeyPatch) -> None:
    """Reading a table's keys runs on the daemon's loop: while routes churn, a table whose reading took
    1 s is paged from the keys it had for 4 s after that (marked not fresh, with when to ask again), then
    read again."""
    now = [0.0]
    reads = []
    drgs, e = _vc_table(["10.0.1.0/24"])
    sort = e.keys

    def costly(t: int, fam: int) -> list[int]:  # half a second per family
        reads.append(now[0])
        now[0] += 0.5
        return sort(t, fam)

    monkeypatch.setattr(e, "keys", costly)
    pages = RulePages(drgs, clock=lambda: now[0])
    assert (await pages.page("rt-vc", None, "", 0, 10))["fresh"] and len(reads) == 2
    assert (await pages.page("rt-vc", None, "", 0, 10))["fresh"] and len(reads) == 2  # nothing changed: kept
    e.announce("vc1", AFI_IPV4, keys("10.0.2.0/24"), [65001])
    now[0] += 1.0
    stale = await pages.page("rt-vc", None, "", 0, 10)
    assert (stale["fresh"], stale["retryAfterMs"], stale["matched"], len(reads)) == (False, 3001, 1, 2)
    now[0] += 3.5
    again = await pages.page("rt-vc", None, "", 0, 10)
    assert again["fresh"] and [r["destination"] for r in again["rules"]] == ["10.0.1.0/24", "10.0.2.0/24"]
    assert len(reads) == 4


@pytest.mark.timeout(60)
async def test_the_event_stream_sends_the_backlog_then_live_events(quiet: Drg) -> None:
    base = f"http://{_api(quiet)}"
    async with aiohttp.ClientSession() as http, http.get(f"{base}/console/events") as r:
        assert r.content_type == "text/event-stream"
        kinds: list[str] = []
        data: list[dict[str, Any]] = []
        async with asyncio.timeout(20):
            while "live" not in kinds:
                line = (await r.content.readline()).decode().rstrip("\n")
                if line.startswith("event: "):
                    kinds.append(line[7:])
                elif line.startswith("data: "):
                    data.append(json.loads(line[6:]))
            assert kinds[0] == "backlog" and data[0]["type"] == "config-applied"  # the daemon's start
            quiet.daemon.publish(quiet.daemon.bus.recent[0].type, None, {"summary": "hello"})
            while True:
                line = (await r.content.readline()).decode()
                if line.startswith("data: ") and json.loads(line[6:]).get("data", {}).get("summary") == "hello":
                    break
            await quiet.stop()  # an open stream does not hold the daemon, and it ends
            assert b"Idle" in await r.content.read()


TOKEN = "console-test-token-0123456789"


@pytest.fixture
async def guarded(tmp_path: Path) -> AsyncIterator[Drg]:
    """The TransportMode daemon alone with a control API token (``api.token``)."""
    drg = Drg(lab_file("transport-mode", tmp_path, lambda doc: doc["api"].update(token=TOKEN)))
    await drg.start()
    try:
        yield drg
    finally:
        await drg.stop()


@pytest.mark.timeout(60)
async def test_the_console_data_needs_the_token_its_page_does_not(guarded: Drg) -> None:
    base = f"http://{_api(guarded)}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as http:
        for path in ("/", "/console/static/main.js"):
            async with http.get(base + path) as r:
                assert r.status == 200, path
        for path in ("/console/api/routes?table=rt-vcn", "/console/events", "/v1/config"):
            async with http.get(base + path) as r:
                assert r.status == 401 and r.headers["WWW-Authenticate"].startswith("Bearer"), path
        async with http.get(f"{base}/console/api/routes?table=rt-vcn", headers=bearer) as r:
            assert r.status == 200 and (await r.json())["table"]["name"] == "rt-vcn"


@needs_chromium
@pytest.mark.timeout(60)
async def test_the_page_asks_for_the_token_and_then_follows_the_bus(guarded: Drg) -> None:
    async with chromium_page(allow=("401",)) as page:
        await page.goto(f"http://{_api(guarded)}/")
        await page.wait_for_selector("#token-form:not([hidden])", timeout=WAIT)
        await page.fill("#token-input", TOKEN)
        await page.press("#token-input", "Enter")
        await page.wait_for_selector("#live[data-state=live]", timeout=WAIT)
        await page.wait_for_selector('g.att[data-name="att-vc1"]', timeout=WAIT)
        assert await page.is_hidden("#token-form")


# ---- in Chromium, against the lab -------------------------------------------------------------------


async def _open(page: Any, run: Running) -> None:
    await page.goto(f"http://{run.api}/")
    await page.wait_for_selector("#live[data-state=live]", timeout=WAIT)
    await page.wait_for_selector('g.att[data-name="att-tun2"][data-tunnel="UP"]', timeout=WAIT)
    await page.evaluate("window.__notReloaded = true")


async def _text(page: Any, selector: str) -> str:
    """The text of an SVG element (inner_text is for HTML elements)."""
    text: str | None = await page.text_content(selector, timeout=WAIT)
    return text or ""


async def _attr(page: Any, selector: str, name: str) -> list[str]:
    values: list[str] = await page.eval_on_selector_all(selector, f"els => els.map(e => e.getAttribute('{name}'))")
    return values


@needs_chromium
@pytest.mark.interop
@pytest.mark.timeout(120)
async def test_topology_shows_every_attachment_and_its_state(lab: Running) -> None:
    async with chromium_page() as page:
        await _open(page, lab)
        names = await _attr(page, "g.att", "data-name")
        assert sorted(names) == ["att-tun1", "att-tun1-lb", "att-tun2", "att-tun2-lb", "att-vc1", "att-vcn"]
        types = dict(zip(names, await _attr(page, "g.att", "data-type"), strict=True))
        assert (types["att-vc1"], types["att-tun1-lb"], types["att-vcn"]) == ("VIRTUAL_CIRCUIT", "LOOPBACK", "VCN")
        states = dict(zip(names, await _attr(page, "g.att", "data-state"), strict=True))
        assert states["att-vc1"] == states["att-tun1"] == states["att-tun2"] == "Established"
        assert await _attr(page, "path[data-tunnel-lane]", "data-tunnel-lane") == ["att-tun1", "att-tun2"]
        assert await _attr(page, "path.lane", "class") == ["lane ok", "lane ok"]  # riding in the VC's band
        assert sorted(await _attr(page, "g.onprem", "data-session")) == ["att-tun1", "att-tun2", "att-vc1"]
        label = await page.get_attribute('g.att[data-name="att-tun1"]', "aria-label")
        assert label is not None and "route table rt-ipsec imports rd-ipsec" in label and "tunnel UP" in label
        assert "BGP Established · tunnel UP" in await _text(page, 'g.att[data-name="att-tun1"]')
        await screenshot(page.locator("#topo"), "console-topology")
        # the keyboard reaches an attachment; Enter shows its table, and its rules are one click away
        await page.focus('g.att[data-name="att-vcn"]')
        await page.keyboard.press("Enter")
        await page.wait_for_selector("#detail h3", timeout=WAIT)
        assert "rt-vcn, importing rd-vcn" in await page.inner_text("#detail")
        await page.click("#detail button >> nth=0")
        await page.wait_for_function("document.querySelectorAll('#rules tbody tr').length === 2", timeout=WAIT)
        assert "conflict" in await page.inner_text("#rules tbody")
        await page.click('#session-table tr[data-session="att-vc1"] button >> text=Advertised')
        await page.wait_for_selector("#session-detail h3", timeout=WAIT)
        assert "172.16.255.1/32" in await page.inner_text("#session-detail")
        assert "session-state" in await page.inner_text("#event-log")


@needs_chromium
@pytest.mark.interop
@pytest.mark.timeout(120)
async def test_withdrawing_the_cpe_route_turns_both_tunnels_down_in_the_open_page(lab: Running) -> None:
    async with chromium_page() as page:
        await _open(page, lab)
        await page.focus('g.att[data-name="att-tun1"]')
        await lab.lab["edge"].withdraw("192.168.200.1/32")
        for tunnel in ("att-tun1", "att-tun2"):
            await page.wait_for_selector(f'g.att[data-name="{tunnel}"][data-tunnel="DOWN"]', timeout=WAIT)
        assert await page.evaluate("window.__notReloaded") is True
        assert await page.evaluate("document.activeElement.dataset.name") == "att-tun1"  # redraws keep the focus
        assert await _attr(page, "path.lane", "class") == ["lane bad", "lane bad"]
        reason = await _text(page, 'path[data-tunnel-lane="att-tun1"] title')
        assert "DOWN" in reason and "192.168.200.1" in reason  # the down reason on hover
        assert "tunnel DOWN" in await _text(page, 'g.att[data-name="att-tun1"]')
        await page.wait_for_function(
            "document.querySelector('#event-log').innerText.includes('tunnel-state att-tun1: DOWN')", timeout=WAIT)


@needs_chromium
@pytest.mark.interop
@pytest.mark.timeout(120)
async def test_the_seed_walks_are_drawn_hop_by_hop(lab: Running) -> None:
    async with chromium_page() as page:
        await _open(page, lab)
        form = "#trace-form"
        for name, value in (("from", "att-vcn"), ("src", "10.10.1.10"), ("dst", "172.20.10.10")):
            await page.fill(f"{form} input[name={name}]", value)
        await page.click(f"{form} button[type=submit]")
        await page.wait_for_function("document.querySelectorAll('#walk-layer g.hop').length === 4", timeout=WAIT)
        assert await _attr(page, "#walk-layer g.hop", "data-where") == ["att-vcn", "att-tun1", "att-tun1-lb", "att-vc1"]
        assert await _attr(page, "#walk-layer g.hop", "data-action") == ["FORWARD", "ENCRYPT", "FORWARD", "EXIT"]
        tags = await _text(page, "#walk-layer .tags")
        assert "2. ENCRYPT: ESP 172.16.255.1 → 192.168.200.1" in tags
        assert "EXIT to on-prem as ESP 172.16.255.1 → 192.168.200.1" in tags
        assert await page.locator("#walk-layer path.walk.esp").count() >= 2  # the encrypted legs
        rows = await page.locator("#trace-result tbody tr").all_inner_texts()
        assert len(rows) == 4 and "172.16.255.1 → 192.168.200.1" in rows[1]
        assert "Result: DELIVERED" in await page.inner_text("#trace-result")
        await screenshot(page.locator("#topo"), "console-walk-outbound")
        await page.click("#trace-presets button >> text=Return walk")  # ESP in over the VC, decrypted, delivered
        await page.wait_for_function(
            "[...document.querySelectorAll('#walk-layer g.hop')].map(h => h.dataset.action).join() === "
            "'FORWARD,DECRYPT,FORWARD,DELIVER'", timeout=WAIT)
        assert "1. ESP 192.168.200.1 → 172.16.255.1" in await _text(page, "#walk-layer .tags")
        await screenshot(page.locator("#topo"), "console-walk-return")
        for name, value in (("from", "att-vc1"), ("src", "172.20.20.10"), ("dst", "10.10.1.10"),
                            ("inner_src", ""), ("inner_dst", "")):
            await page.fill(f"{form} input[name={name}]", value)
        await page.click(f"{form} button[type=submit]")
        await page.wait_for_selector("#walk-layer .tag.drop", timeout=WAIT)
        assert "DROPPED" in await _text(page, "#walk-layer .tag.drop")
        assert "Result: DROPPED" in await page.inner_text("#trace-result")


async def _count_starts(page: Any, text: str) -> None:
    """Wait until the table's counter reads ``text...``."""
    await page.wait_for_function("t => document.querySelector('#table-count').innerText.startsWith(t)", arg=text,
                                 timeout=WAIT)


def _big_config(tmp: Path) -> Path:
    """A VCN and a VC whose table imports the VC: the table holds whatever the VC's peer sends."""
    doc = {
        "drg": {"name": "drg-big", "asn": 31898},
        "speaker": {"listen": f"127.0.0.1:{free_port()}"}, "api": {"listen": f"127.0.0.1:{free_port()}"},
        "vcns": [{"name": "vcn-app", "cidrs": ["192.168.50.0/24"], "subnets": ["192.168.50.0/24"]}],
        "attachments": [
            {"name": "att-vcn", "type": "VCN", "vcn": "vcn-app", "route_table": "rt-vcn"},
            {"name": "att-vc1", "type": "VIRTUAL_CIRCUIT", "route_table": "rt-vc",
             "bgp": {"oracle_ip": "192.168.100.1/30", "customer_ip": "192.168.100.2/30", "customer_asn": 65001,
                     "peer": "127.0.0.2", "connect": "passive", "max_prefixes": {"ipv4": 200000, "ipv6": 500}}}],
        "route_tables": [{"name": "rt-vcn", "import_distribution": "rd-vcn"},
                         {"name": "rt-vc", "import_distribution": "rd-vc"}],
        "distributions": [
            {"name": "rd-vcn", "statements": [{"priority": 10, "match": {"attachment_type": "VIRTUAL_CIRCUIT"}}]},
            {"name": "rd-vc", "statements": [{"priority": 10, "match": {"attachment_type": "VCN"}}]}],
    }
    path = tmp / "big.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


@needs_chromium
@pytest.mark.interop
@pytest.mark.timeout(180)
async def test_a_100000_rule_table_renders_a_page_at_a_time_and_filters(tmp_path: Path) -> None:
    drg = Drg(_big_config(tmp_path))
    await drg.start()
    sender = None
    try:
        host, port = drg.daemon.config.speaker.listen.split(":")
        sender = await blast(host, int(port), "127.0.0.2", 65001, 31898, 100_000)
        await drg.wait_established("att-vc1", timeout=30)
        for _ in range(240):
            if drg.sessions()["sessions"][0]["prefixesReceived"] == 100_000:
                break
            await asyncio.sleep(0.25)
        assert len(drg.route_table("rt-vcn")["rules"]) == 100_000
        async with chromium_page() as page:
            await page.goto(f"http://{drg.daemon.config.api.listen}/")
            await _count_starts(page, "Rules 1 to 100 of 100,000")
            assert await page.locator("#rules tbody tr").count() == 100  # one page in the DOM, not 100,000 rows
            await page.click("#page-next")
            await _count_starts(page, "Rules 101 to 200 of 100,000")
            await page.fill("#table-filter", "10.1.0.0/16")
            await _count_starts(page, "Rules 1 to 100 of 256 matching")
            await page.fill("#table-filter", "10.0.5.")
            await page.wait_for_function("document.querySelectorAll('#rules tbody tr').length === 1", timeout=WAIT)
            assert (await page.inner_text("#rules tbody")).startswith("10.0.5.0/24")
    finally:
        if sender is not None:
            await sender.stop()
        await drg.stop()
