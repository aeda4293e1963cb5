"""``drg lab``: the daemon plus one on-prem router per ``onprem`` entry, until Ctrl-C.

A multi-DRG file (``drgs:``, e.g. examples/two-regions.yaml) runs all its DRGs in the one daemon,
each ``onprem`` entry peering with the DRG that holds its session. Each entry's ``kind`` picks the
router: ExaBGP (default), FRR's bgpd or BIRD 2 (peers/). The
programs are looked up before anything starts: a missing FRR or BIRD fails at once with the
``apt-get install`` to run. The daemon starts first (ExaBGP backs off up to a minute between
connect attempts, so it must find the DRG listening), then the peers, each in its own process
group under a temporary work directory. A short guide says what to try and ends with the web
console's address (``open http://127.0.0.1:<api port>/``); Ctrl-C (or SIGTERM)
sends Cease to every peer, stops every router (and ExaBGP's helper) by PID, and removes the work
directory.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

from controlplane.config.problems import ConfigError
from controlplane.config.schema import AttachmentType, DrgConfig, VcnAttachment
from controlplane.daemon import Daemon, print_problems, startup_config
from peers.lab import Lab, check_peers, specs_from_config
from peers.router import RouterMissing

log = logging.getLogger("controlplane.lab")
_KIND_NAMES = {"exabgp": "ExaBGP", "frr": "FRR bgpd", "bird": "BIRD 2"}


def _program() -> str:
    """How to type ``drg`` in another terminal: the bare name when it is on PATH (an activated venv),
    else the path of the running console script (``make lab`` runs ``.venv/bin/drg``)."""
    argv0 = sys.argv[0]
    if shutil.which("drg") or not argv0.endswith("drg"):
        return "drg"
    return os.path.relpath(argv0) if not os.path.relpath(argv0).startswith("..") else argv0


def _host(cidr: str) -> str:
    """A plausible host of a network: .10 when there is room, else the first host."""
    net = ipaddress.ip_network(cidr)
    return str(net.network_address + 10) if net.num_addresses > 16 else str(next(net.hosts()))


def _trace_hint(config: DrgConfig) -> str | None:
    """A trace to the first prefix a tunnel peer announces: from a spoke subnet whose route table sends
    traffic to the DRG (R69, R71), else entering the DRG on the first VCN attachment."""
    announced = [r.prefix for p in config.onprem for r in p.announce if not r.prefix.endswith("/32")]
    dst = _host(announced[0]) if announced else "172.20.10.10"
    vcns = {v.name: v for v in config.vcns}
    attached = [vcns[a.vcn] for a in config.attachments if isinstance(a, VcnAttachment) and a.vcn in vcns]
    for vcn in sorted(attached, key=lambda v: bool(v.appliances)):  # spokes before hubs
        subnet = next(iter(vcn.subnet_list), None)
        table = vcn.route_table(subnet.route_table) if subnet is not None else None
        if subnet is not None and table is not None and any(r.target.kind == "drg" for r in table.rules):
            return f"trace --from {vcn.name} --src {_host(subnet.cidr)} --dst {dst}"
    first = next((a for a in config.attachments if isinstance(a, VcnAttachment)), None)
    if first is None:
        return None
    first_vcn = vcns.get(first.vcn)
    src = _host(first_vcn.subnet_cidrs[0]) if first_vcn is not None and first_vcn.subnet_cidrs else "10.10.1.10"
    return f"trace --from {first.name} --src {src} --dst {dst}"


def _api_option(config: DrgConfig) -> str:
    """The ``--api`` the guide's commands need (https:// with TLS; none for the default listener)."""
    api = config.api
    if api.tls_cert is not None:
        return f" --api https://{api.listen}"
    return "" if api.listen == "127.0.0.1:8790" else f" --api {api.listen}"


def guide(config: DrgConfig, path: Path) -> str:
    opt = _api_option(config)
    drg = _program()
    lines = [
        "",
        f"DRG {config.drg.name} lab is running ({path}).",
        *(f"  on-prem {p.name}: {_KIND_NAMES[p.kind]} on session {p.session}" for p in config.onprem),
        "Try, in another terminal:",
        f"  {drg} sessions{opt}                 BGP sessions and tunnel state",
        f"  {drg} routes{opt}                   every DRG route table",
    ]
    vcs = [a for a in config.attachments if a.type == AttachmentType.VIRTUAL_CIRCUIT]
    if vcs:
        lines.append(f"  {drg} advertised {vcs[0].name}{opt}     what the DRG advertises to on-prem")
    hint = _trace_hint(config)
    if hint is not None:
        lines.append(f"  {drg} {hint}{opt}")
    lines += [f"  {drg} events{opt}                   follow sessions, routes and tunnels live",
              "Ctrl-C stops the daemon and every on-prem peer.", *_console(config)]
    return "\n".join(lines)


def _console(config: DrgConfig) -> list[str]:
    """The guide's closing lines: the web console the daemon serves on its control API (console/)."""
    scheme = "https" if config.api.tls_cert is not None else "http"
    return ["The console (topology, route tables, sessions, packet walks; live):",
            f"open {scheme}://{config.api.listen}/", ""]


def _with_mqtt(config: DrgConfig) -> DrgConfig:
    """The lab publishes MQTT events without installing a broker: ``events.mqtt`` null -> embedded."""
    if config.events.mqtt is not None:
        return config
    return config.model_copy(update={"events": config.events.model_copy(update={"mqtt": "embedded"})})


def multi_guide(configs: list[DrgConfig], path: Path) -> str:
    """The guide of a multi-DRG lab (``drgs:``): the DRGs, their peers, and ``--drg`` queries."""
    opt = _api_option(configs[0])
    drg = _program()
    lines = ["", f"DRGs {', '.join(c.drg.name for c in configs)} lab is running ({path}); their RPC routes are "
             "exchanged in process (R109)."]
    lines += [f"  {c.drg.name}: on-prem {p.name}: {_KIND_NAMES[p.kind]} on session {p.session}"
              for c in configs for p in c.onprem]
    lines += ["Try, in another terminal:",
              f"  {drg} sessions{opt}                 BGP sessions of every DRG",
              f"  {drg} routes --drg {configs[-1].drg.name}{opt}     one DRG's route tables (all: without --drg)"]
    for c in configs:
        vc = next((a for a in c.attachments if a.type == AttachmentType.VIRTUAL_CIRCUIT), None)
        if vc is not None:
            lines.append(f"  {drg} advertised {vc.name}{opt}     what {c.drg.name} advertises to on-prem")
    hint = _trace_hint(configs[0])
    if hint is not None:
        lines.append(f"  {drg} {hint}{opt}")
    lines += [f"  {drg} events{opt}                   follow sessions, routes and tunnels live",
              "Ctrl-C stops the daemon and every on-prem peer.", *_console(configs[0])]
    return "\n".join(lines)


async def run_lab(path: Path, log_level: str = "info") -> int:
    design = await startup_config(path, "drg lab", log_level)
    if isinstance(design, int):
        return design
    design = [_with_mqtt(c) for c in design] if isinstance(design, list) else _with_mqtt(design)
    configs = design if isinstance(design, list) else [design]
    try:
        specs = [s for c in configs for s in specs_from_config(c.model_dump(mode="json"))]
        check_peers(specs)
    except RouterMissing as exc:
        print(f"drg lab: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:
        print(f"drg lab: onprem: {exc}", file=sys.stderr)
        return 1
    daemon = Daemon(design, path)
    workdir = Path(tempfile.mkdtemp(prefix="drg-lab-"))
    lab = Lab()
    loop = asyncio.get_running_loop()
    done = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, done.set)
    try:
        await daemon.start()
        log.info("starting %d on-prem peer(s) in %s", len(specs), workdir)
        await lab.start(specs, workdir)
        for spec in specs:
            log.info("started %s (%s) on %s, AS %d", spec.name, _KIND_NAMES[spec.kind], spec.local_address,
                     spec.local_as)
        print(multi_guide(design, path) if isinstance(design, list) else guide(design, path), flush=True)
        await done.wait()
    except ConfigError as exc:  # the API's credentials (token, keys, TLS files)
        print_problems("drg lab", path, exc.problems)
        return 1
    except OSError as exc:
        print(f"drg lab: {exc.strerror or exc}", file=sys.stderr)
        return 2
    finally:
        log.info("stopping")
        await daemon.stop("lab stopped")
        await lab.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 0
