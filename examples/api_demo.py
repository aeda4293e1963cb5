"""The asyncio API end to end: the DRG plus its ExaBGP on-prem peers, queried from Python.

    .venv/bin/python examples/api_demo.py [examples/transport-mode.yaml]

Starts the daemon in this process (``controlplane.Drg``) and one ExaBGP process per ``onprem``
entry, waits for every session, prints a table, an advertisement, a trace and a few events, then
switches the VC to All Traffic live with ``Drg.apply`` and stops everything.
"""

import asyncio
import sys
import tempfile
from pathlib import Path

from controlplane import Drg, load_config
from peers.lab import Lab, specs_from_config

HERE = Path(__file__).resolve().parent


async def main(path: Path) -> None:
    config = load_config(path)
    async with Drg(config) as drg, Lab() as lab:
        events = drg.events()  # subscribe first: nothing is missed
        await lab.start(specs_from_config(config.model_dump(mode="json")), Path(tempfile.mkdtemp()))
        for session in ("att-vc1", "att-tun1", "att-tun2"):
            await drg.wait_established(session, timeout=30)
        await asyncio.sleep(1)
        for rule in drg.route_table("rt-vcn")["rules"]:
            print("rt-vcn:", rule["destination"], "->", rule["nextHop"], "conflict" if rule["isConflict"] else "")
        print("advertised to att-vc1:", [r["prefix"] for r in drg.advertised("att-vc1")["routes"]])
        walk = drg.trace(from_attachment="att-vcn", src="10.10.1.10", dst="172.20.10.10")
        print("trace:", " -> ".join(f"{h['attachment']}:{h['action']}" for h in walk["hops"]), walk["result"])
        for _ in range(3):
            event = await asyncio.wait_for(anext(events), 5)
            print("event:", event.type, event.subject, event.data.get("summary"))
        other = HERE / "all-traffic.yaml"
        if path.name == "transport-mode.yaml" and other.exists():
            result = await drg.apply(other)
            print("applied all-traffic.yaml:", "; ".join(result["changes"]))
            print("advertised to att-vc1:", [r["prefix"] for r in drg.advertised("att-vc1")["routes"]])
        events.close()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "transport-mode.yaml"))
