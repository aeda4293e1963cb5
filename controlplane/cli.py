"""``drg``: the command line of product.md, a thin client of the daemon's control API.

Every command builds the JSON document of product.md (from the running daemon over HTTP, or for
``routes``/``advertised``/``trace`` offline from ``--config`` and ``--learned`` files through the same
route engine) and prints it with ``--json`` or as an aligned table. ``routes`` alone is streamed: the
daemon sends the dump already rendered as printed (``/v1/routes?indent=2`` or ``format=text``) and it
is copied to stdout as it arrives; offline, the same chunked renderers write it.

Exit codes: 0 done; 1 invalid or rejected; 2 usage error, unreadable file or a token the daemon
refused (401); 3 no daemon answers. The daemon is reached through ``controlplane/client.py``
(``--api [https://]HOST:PORT``, ``--token-file``, ``--ca-file``).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import sys
import urllib.error
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, BinaryIO

from controlplane import render
from controlplane.client import ClientError, ControlClient

DEFAULT_API = "127.0.0.1:8790"
STREAM_READ = 1 << 20  # bytes per read of a streamed answer

EXAMPLES = """\
examples:
  drg validate examples/transport-mode.yaml         check a design against OCI's rules
  drg run examples/transport-mode.yaml              the daemon (BGP on speaker.listen, API on api.listen)
  drg lab                                           daemon + on-prem peers (ExaBGP, FRR or BIRD)
  drg routes rt-vcn                                 one route table of the running daemon
  drg routes --config lab.yaml --learned seen.yaml  the same, offline, from files
  drg routes --drg drg-b                            one DRG of a multi-DRG file (drgs:)
  drg sessions --json                               BGP sessions for scripts
  drg offered att-hub                               what an attachment offers to the route tables
  drg trace --from att-vcn --src 10.10.1.10 --dst 172.20.10.10
  drg trace --from vcn-spoke1 --src 10.10.1.10 --dst 10.11.1.10   from a VCN's subnet, through the hub firewall
"""


class CliError(Exception):
    def __init__(self, message: str, code: int) -> None:
        super().__init__(message)
        self.code = code


# ---- talking to the daemon ----------------------------------------------------------------------


def client(args: argparse.Namespace) -> ControlClient:
    """The control API client of ``--api``, ``--token-file`` and ``--ca-file`` (``controlplane/client.py``)."""
    try:
        return ControlClient(args.api, token_file=args.token_file, ca_file=args.ca_file)
    except ValueError as exc:
        raise CliError(str(exc), 2) from exc
    except OSError as exc:
        raise CliError(f"cannot read the token file {exc.filename}: {exc.strerror}", 2) from exc


def _failed(exc: ClientError) -> CliError:
    if exc.kind in ("auth", "tls"):
        return CliError(str(exc), 2 if exc.kind == "auth" else 3)
    return CliError(f"{exc}; start one with 'drg run CONFIG' or 'drg lab', or point --api at it", 3)


def api_request(args: argparse.Namespace, path: str, body: dict[str, Any] | None = None) -> tuple[int, Any]:
    try:
        return client(args).request(path, body)
    except ClientError as exc:
        raise _failed(exc) from exc


def api_stream(args: argparse.Namespace, path: str, out: BinaryIO) -> None:
    """GET ``path`` and copy the body to ``out`` as it arrives (the streamed route dump)."""
    try:
        status, error = client(args).stream(path, out, STREAM_READ)
    except ClientError as exc:
        raise _failed(exc) from exc
    except http.client.HTTPException as exc:  # IncompleteRead: the daemon went away mid-dump
        raise CliError(f"the daemon at {args.api} ended the dump early ({exc!r})", 3) from exc
    if status >= 400:
        raise CliError(str(error), 1 if status in (404, 422) else 2)


def api_get(args: argparse.Namespace, path: str) -> Any:
    status, doc = api_request(args, path)
    if status >= 400:
        message = doc.get("error") if isinstance(doc, dict) else doc
        raise CliError(str(message), 1 if status in (404, 422) else 2)
    return doc


# ---- offline mode ----------------------------------------------------------------------------------


def _offline(args: argparse.Namespace) -> Any:
    """The DRGs of ``--config`` (one for a single-DRG file), ``--learned`` replayed, RPCs settled (R109)."""
    from controlplane.config.problems import ConfigError
    from controlplane.engine.drgs import drgs_from_files

    try:
        return drgs_from_files(Path(args.config), Path(args.learned) if args.learned else None)
    except ConfigError as exc:
        raise CliError(render.problems({"errors": [p.to_json() for p in exc.problems]}).rstrip(), 1) from exc
    except OSError as exc:
        raise CliError(f"cannot read {exc.filename}: {exc.strerror}", 2) from exc


def _lookup(fn: Callable[[], Any]) -> Any:
    try:
        return fn()
    except KeyError as exc:
        raise CliError(str(exc.args[0]) if exc.args else str(exc), 1) from exc
    except ValueError as exc:  # a name of several DRGs without --drg; a bad address (as the API's 400)
        raise CliError(str(exc), 2) from exc


def _query(args: argparse.Namespace, **params: str | None) -> str:
    """The query string of a control API request: the given parameters and ``--drg``."""
    query = {k: v for k, v in {**params, "drg": getattr(args, "drg", None)}.items() if v}
    return "?" + urllib.parse.urlencode(query) if query else ""


# ---- commands ----------------------------------------------------------------------------------------


def cmd_routes(args: argparse.Namespace) -> int:
    """The route dump, streamed to stdout as it comes: from the daemon (``/v1/routes`` already rendered
    as this command prints it), or offline from the same chunked renderers."""
    out = sys.stdout.buffer
    if args.config:
        from controlplane.engine.dump import INDENTED, iter_json
        from controlplane.render_dump import iter_text

        drgs = _offline(args)
        plan = _lookup(lambda: drgs.route_plan(args.table, args.attachment, args.drg))
        for text in iter_json(plan, INDENTED) if args.json else iter_text(plan):
            out.write(text.encode())
    else:
        form = {"indent": "2"} if args.json else {"format": "text"}
        path = "/v1/routes" + _query(args, table=args.table, attachment=args.attachment, **form)
        api_stream(args, path, out)
    if args.json:
        out.write(b"\n")
    out.flush()
    return 0


def cmd_sessions(args: argparse.Namespace) -> Any:
    return api_get(args, "/v1/sessions" + _query(args))


def cmd_advertised(args: argparse.Namespace) -> Any:
    if args.config:
        drgs = _offline(args)
        return _lookup(lambda: drgs.advertised(args.peer, args.drg)[1])
    return api_get(args, "/v1/advertised/" + urllib.parse.quote(args.peer, safe="") + _query(args))


def cmd_offered(args: argparse.Namespace) -> Any:
    if args.config:
        drgs = _offline(args)
        return _lookup(lambda: drgs.offered(args.attachment, args.drg))
    return api_get(args, "/v1/offered/" + urllib.parse.quote(args.attachment, safe="") + _query(args))


def cmd_trace(args: argparse.Namespace) -> Any:
    if args.config:
        drgs = _offline(args)
        return _lookup(lambda: drgs.trace(args.from_, args.src, args.dst, args.inner_src, args.inner_dst, args.drg))
    return api_get(args, "/v1/trace" + _query(args, **{"from": args.from_, "src": args.src, "dst": args.dst,
                                                           "inner_src": args.inner_src, "inner_dst": args.inner_dst}))


def cmd_validate(args: argparse.Namespace) -> int:
    from controlplane.config.drgs import design_json, validate_design_file

    try:
        design, result = validate_design_file(Path(args.config))
    except OSError as exc:
        raise CliError(f"cannot read {args.config}: {exc.strerror}", 2) from exc
    doc = design_json(result, design)
    if args.json:
        print(json.dumps(doc, indent=2))
    elif doc["valid"] and "drgs" in doc:  # a multi-DRG file: one line per DRG
        print(f"{args.config}: valid ({len(doc['drgs'])} DRGs)")
        for item in doc["drgs"]:
            eff = item["config"]
            print(f"  {item['drg']}: {len(eff.get('attachments', []))} attachments, "
                  f"{len(eff.get('routeTables', []))} route tables")
        print(render.problems({"warnings": doc.get("warnings", [])}), end="")
    elif doc["valid"]:
        eff = doc.get("config") or {}
        print(f"{args.config}: valid ({len(eff.get('attachments', []))} attachments, "
              f"{len(eff.get('routeTables', []))} route tables)")
        print(render.problems({"warnings": doc.get("warnings", [])}), end="")
    else:
        print(f"{args.config}: {len(doc['errors'])} problem(s); nothing would be applied")
        print(render.problems(doc), end="")
    return 0 if doc["valid"] else 1


def cmd_apply(args: argparse.Namespace) -> int:
    try:
        text = Path(args.config).read_text()
    except OSError as exc:
        raise CliError(f"cannot read {args.config}: {exc.strerror}", 2) from exc
    status, doc = api_request(args, "/v1/apply", {"config": text, "file": args.config})
    if args.json:
        print(json.dumps(doc, indent=2))
    elif status == 200:
        changes = doc.get("changes") or []
        print(f"applied {args.config}: {len(changes)} change(s)")
        for change in changes:
            print(f"  {change}")
    elif isinstance(doc, dict) and "errors" in doc:
        print(f"rejected {args.config}; nothing changed:")
        print(render.problems(doc), end="")
    else:
        print(f"rejected: {doc.get('error') if isinstance(doc, dict) else doc}", file=sys.stderr)
    return 0 if status == 200 else 1


def cmd_events(args: argparse.Namespace) -> int:
    if args.mqtt:
        # From a broker: every message under drg/ (or --topic, an MQTT filter), one line each.
        from controlplane.events.mqtt_client import follow, parse_mqtt_url

        try:
            target = parse_mqtt_url(args.mqtt)
        except ValueError as exc:
            raise CliError(f"--mqtt {exc}; write mqtt[s]://[user:password@]HOST:PORT", 2) from exc

        def show(topic: str, payload: bytes, retained: bool) -> None:
            text = payload.decode(errors="replace")
            if args.json:
                try:
                    body: Any = json.loads(text) if text else None
                except json.JSONDecodeError:
                    body = text
                print(json.dumps({"topic": topic, "payload": body, "retained": retained}), flush=True)
            else:
                print(f"{topic} {text}", flush=True)

        try:
            asyncio.run(follow(args.mqtt, args.topic or "drg/#", show))
        except OSError as exc:
            raise CliError(f"no MQTT broker answers at {target.display()} ({exc})", 3) from exc
        except KeyboardInterrupt:
            return 0
        return 0
    try:
        for event in client(args).events():
            if args.topic and not str(event.get("type", "")).startswith(args.topic):
                continue
            if args.json:
                print(json.dumps(event), flush=True)
            else:
                subject = f" {event['subject']}" if event.get("subject") else ""
                if event.get("drg"):  # a daemon of several DRGs
                    subject = f" {event['drg']}/{event['subject']}" if event.get("subject") else f" {event['drg']}"
                summary = event["data"].get("summary") or json.dumps(event["data"])
                print(f"{event['type']}{subject}: {summary}", flush=True)
    except ClientError as exc:
        raise _failed(exc) from exc
    except (urllib.error.URLError, ConnectionError) as exc:
        raise CliError(f"no DRG daemon answers at {args.api} ({exc})", 3) from exc
    except KeyboardInterrupt:
        return 0
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from controlplane.daemon import run_daemon

    return asyncio.run(run_daemon(Path(args.config), log_level=args.log_level))


def cmd_lab(args: argparse.Namespace) -> int:
    from controlplane.lab import run_lab

    return asyncio.run(run_lab(Path(args.config), log_level=args.log_level))


# ---- argument parsing --------------------------------------------------------------------------------
# One function per subcommand; build_parser adds them in the order ``drg --help`` lists them.

def _api_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--api", default=DEFAULT_API, metavar="[https://]HOST:PORT",
                   help=f"the daemon's control API (default {DEFAULT_API}); https:// for a TLS listener")
    p.add_argument("--token-file", metavar="FILE",
                   help="the daemon's api.token_file (default: $DRG_TOKEN, $DRG_TOKEN_FILE, then "
                        "~/.config/drg/token if it exists)")
    p.add_argument("--ca-file", metavar="FILE", help="CA (or self-signed certificate) to verify an https:// API "
                                                      "with (default: $DRG_CA_FILE, else the system's)")


def _json_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print the JSON document of product.md")


def _drg_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--drg", metavar="NAME", help="in a multi-DRG file (drgs:): this DRG only")


def _offline_opt(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="offline: compute from this DRG file (one DRG or drgs:), "
                                                     "no daemon")
    p.add_argument("--learned", metavar="FILE",
                   help="offline: what each BGP/static session offers (YAML: attachment -> routes)")


def _add_run(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("run", help="the daemon: BGP speaker, route engine, control API")
    p.add_argument("config", metavar="CONFIG")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    p.set_defaults(func=cmd_run, raw=True)


def _add_validate(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("validate", help="check a DRG file against OCI's rules")
    p.add_argument("config", metavar="CONFIG")
    _json_opt(p)
    p.set_defaults(func=cmd_validate, raw=True)


def _add_apply(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("apply", help="send a new configuration to the running daemon (all or nothing)")
    p.add_argument("config", metavar="CONFIG")
    _api_opt(p)
    _json_opt(p)
    p.set_defaults(func=cmd_apply, raw=True)


def _add_routes(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("routes", help="route dump: every DRG route table, or one")
    p.add_argument("table", nargs="?", metavar="TABLE")
    p.add_argument("--attachment", metavar="NAME", help="the table this attachment uses")
    _drg_opt(p)
    _api_opt(p)
    _json_opt(p)
    _offline_opt(p)
    p.set_defaults(func=cmd_routes, raw=True)


def _add_sessions(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("sessions", help="BGP sessions, their state and tunnels")
    _drg_opt(p)
    _api_opt(p)
    _json_opt(p)
    p.set_defaults(func=cmd_sessions, render=render.sessions)


def _add_advertised(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("advertised", help="what the DRG advertises to a peer (Adj-RIB-Out)",
                       description="The Adj-RIB-Out of one BGP session: empty (routes: []) while the session "
                                   "is not Established, with what it would send under wouldAdvertise.")
    p.add_argument("peer", metavar="SESSION_OR_NEIGHBOR",
                   help="an attachment (its IPv4 or only session), a dual-stack VC's <vc>.ipv6 session, "
                        "or the neighbor's customer_ip")
    _drg_opt(p)
    _api_opt(p)
    _json_opt(p)
    _offline_opt(p)
    p.set_defaults(func=cmd_advertised, render=render.advertised)


def _add_offered(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("offered", help="what an attachment offers for import into route tables",
                       description="The routes an attachment offers to every DRG route table whose import "
                                   "distribution matches it (R22, R78-R81): a VCN's subnet or VCN CIDRs plus "
                                   "its ingress route table's destinations, a session's learned routes, a "
                                   "loopback's headend; and the tables that import it. When a route is missing "
                                   "from a table, this says whether it was never offered or not imported.")
    p.add_argument("attachment", metavar="ATTACHMENT")
    _drg_opt(p)
    _api_opt(p)
    _json_opt(p)
    _offline_opt(p)
    p.set_defaults(func=cmd_offered, render=render.offered)


def _add_trace(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("trace", help="follow a packet hop by hop through the DRG, VCNs and appliances")
    p.add_argument("--from", dest="from_", required=True, metavar="VCN_OR_ATTACHMENT",
                   help="a VCN: the walk starts at the route table of its subnet that holds --src (R69); "
                        "an attachment: the packet enters the DRG on it (a name of both is the attachment)")
    p.add_argument("--src", required=True, metavar="IP")
    p.add_argument("--dst", required=True, metavar="IP")
    p.add_argument("--inner-src", metavar="IP", help="source of the packet inside an arriving ESP packet")
    p.add_argument("--inner-dst", metavar="IP", help="destination of the packet inside an arriving ESP packet")
    _drg_opt(p)
    _api_opt(p)
    _json_opt(p)
    _offline_opt(p)
    p.set_defaults(func=cmd_trace, render=render.trace)


def _add_events(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("events", help="follow the daemon's events")
    p.add_argument("--mqtt", metavar="URL", help="read from an MQTT broker instead of the daemon")
    p.add_argument("--topic", metavar="FILTER",
                   help="from the daemon: only events whose type starts with FILTER (e.g. tunnel-state); "
                        "with --mqtt: an MQTT topic filter (e.g. 'drg/drg1/route-tables/#')")
    _api_opt(p)
    _json_opt(p)
    p.set_defaults(func=cmd_events, raw=True)


def _add_lab(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("lab", help="the daemon plus on-prem peers from the file's onprem section "
                                   "(onprem[].kind: exabgp, frr or bird)")
    p.add_argument("config", nargs="?", default="examples/transport-mode.yaml", metavar="CONFIG")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning"])
    p.set_defaults(func=cmd_lab, raw=True)


SUBCOMMANDS = (_add_run, _add_validate, _add_apply, _add_routes, _add_sessions, _add_advertised, _add_offered,
               _add_trace, _add_events, _add_lab)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drg",
        description="An OCI Dynamic Routing Gateway control-plane emulator that speaks real BGP.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if getattr(args, "raw", False):
            code: int = args.func(args)
            return code
        doc = args.func(args)
        if args.json:
            print(json.dumps(doc, indent=2))
        else:
            print(args.render(doc), end="")
        return 0
    except CliError as exc:
        print(f"drg: {exc}", file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
