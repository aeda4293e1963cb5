"""Reading configuration and learned-routes files: strict YAML, schema validation, problems with a fix.

How it works: ``parse_config`` reads YAML with a loader that refuses duplicate keys, validates the
mapping against :class:`~controlplane.config.schema.DrgConfig`, and turns every pydantic error into a
:class:`~controlplane.config.problems.Problem` that names the object (by its ``name``), the field path
(``statements[1].match``), the rule and a fix (with a "did you mean" for misspelt fields). Every
problem of a file is raised at once in a :class:`~controlplane.config.problems.ConfigError`.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, cast

import yaml
from pydantic import ValidationError

from controlplane.config.problems import ConfigError, Problem
from controlplane.config.schema import (
    ApiSection,
    Distribution,
    DrgConfig,
    DrgSection,
    EventsSection,
    IpsecTunnelAttachment,
    LearnedRoute,
    MaxPrefixes,
    Onprem,
    OnpremRoute,
    RouteTable,
    SpeakerSection,
    Statement,
    StaticRoute,
    TunnelBgp,
    VcBgp,
    Vcn,
    VcnAttachment,
    VirtualCircuitAttachment,
)
from controlplane.config.vcn import Appliance, PolicyRule, Subnet, VcnRouteRule, VcnRouteTable


class _StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses duplicate keys (PyYAML silently keeps the last one)."""


def _mapping(loader: _StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
        seen.add(key)
    return loader.construct_mapping(node, deep=deep)


_StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def read_yaml(text: str, filename: str) -> Any:
    """YAML text -> data; duplicate keys and syntax errors are a ConfigError naming the position."""
    try:
        return yaml.load(text, Loader=_StrictLoader)  # a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "unknown position"
        what = getattr(exc, "problem", None) or str(exc)
        raise ConfigError([Problem(filename, "<file>", None, "yaml", f"YAML error at {line}: {what}",
                                   f"correct the YAML syntax at {line}")]) from None


_FIELD_NAMES = sorted({name for model in (DrgSection, SpeakerSection, ApiSection, EventsSection, Vcn,
                                           MaxPrefixes, VcBgp, TunnelBgp, VcnAttachment,
                                           VirtualCircuitAttachment, IpsecTunnelAttachment, StaticRoute,
                                           RouteTable, Statement, Distribution, OnpremRoute, Onprem,
                                           DrgConfig, Subnet, Appliance, PolicyRule, VcnRouteTable,
                                           VcnRouteRule) for name in model.model_fields})


def _locate(raw: Any, loc: tuple[int | str, ...]) -> tuple[str, str | None]:
    """Object name and field path of a pydantic error location, read against the raw data."""
    if not loc:
        return "<file>", None
    obj = str(loc[0])
    node: Any = raw.get(loc[0]) if isinstance(raw, dict) else None
    parts: list[str] = []
    rest = list(loc[1:])
    if rest and isinstance(rest[0], int) and isinstance(node, list):
        index = cast(int, rest.pop(0))
        item = node[index] if index < len(node) else None
        name = item.get("name") if isinstance(item, dict) else None
        obj = name if isinstance(name, str) else f"{loc[0]}[{index}]"
        node = item
    for part in rest:
        if isinstance(part, int):
            parts.append(f"[{part}]")
            node = node[part] if isinstance(node, list) and part < len(node) else None
        elif isinstance(node, dict) and part not in node and node.get("type") == part:
            continue  # the tag of a discriminated union
        else:
            parts.append(("." if parts else "") + part)
            node = node.get(part) if isinstance(node, dict) else None
    return obj, "".join(parts) or None


def _schema_fix(error: Any, obj: str, field: str | None) -> tuple[str, str]:
    kind = error["type"]
    ctx = error.get("ctx") or {}
    last = field.rsplit(".", 1)[-1] if field else obj
    if kind == "missing":
        return "schema", f"add {last} to {obj}"
    if kind == "extra_forbidden":
        close = difflib.get_close_matches(last, _FIELD_NAMES, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        return "schema", f"remove {last} from {obj}{hint}"
    if kind == "union_tag_invalid":
        tag = ctx.get("tag")
        if tag == "LOOPBACK":
            return "R2", "remove this attachment: LOOPBACK attachments are created by the system (R2, R6)"
        return "schema", "set type to VCN, VIRTUAL_CIRCUIT, IPSEC_TUNNEL or REMOTE_PEERING_CONNECTION"
    if kind == "union_tag_not_found":
        return "schema", "add type: VCN, VIRTUAL_CIRCUIT, IPSEC_TUNNEL or REMOTE_PEERING_CONNECTION"
    if kind == "literal_error":
        return "schema", f"use one of {ctx.get('expected')}"
    return "schema", f"correct {last}: {error['msg'].lower()}"


def problems_from_validation(exc: ValidationError, raw: Any, filename: str) -> list[Problem]:
    """Every pydantic error as a Problem naming the object by its ``name`` and the field path."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        obj, field = _locate(raw, tuple(error["loc"]))
        if "field" in ctx:
            field = (f"{field}." if field else "") + ctx["field"]
        obj = ctx.get("object", obj)
        if "rule" in ctx:
            rule, fix, message = ctx["rule"], ctx["fix"], ctx["msg"]
        else:
            rule, fix = _schema_fix(error, obj, field)
            message = error["msg"]
            if error["type"] == "union_tag_invalid" and ctx.get("tag") == "LOOPBACK":
                message = "attachments of type LOOPBACK cannot be created"
            elif error["type"] == "union_tag_invalid":
                message = f"attachment type {ctx.get('tag')!r} is not supported"
        problem = Problem(filename, obj, field, rule, message, fix)
        if problem not in problems:
            problems.append(problem)
    return problems


def parse_config(text: str, filename: str = "<config>") -> DrgConfig:
    """Parse and validate a configuration; raises ConfigError with every problem found."""
    return config_from_data(read_yaml(text, filename), filename)


def config_from_data(raw: Any, filename: str) -> DrgConfig:
    """A single-DRG file's data (``read_yaml``) -> DrgConfig; raises ConfigError with every problem."""
    if not isinstance(raw, dict):
        raise ConfigError([Problem(filename, "<file>", None, "schema", "the file is not a YAML mapping",
                                   "start the file with a drg: section (see examples/transport-mode.yaml)")])
    try:
        return DrgConfig.model_validate(raw)
    except ValidationError as exc:
        raise ConfigError(problems_from_validation(exc, raw, filename)) from None


def read_file(path: str | Path) -> str:
    """A file's text; an unreadable file is a ConfigError (rule ``io``)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([Problem(str(path), "<file>", None, "io", f"cannot read the file: {exc.strerror}",
                                   "check the path and permissions")]) from None


def load_config(path: str | Path) -> DrgConfig:
    """Read and validate a configuration file (schema level; ``config.validate.validate`` checks OCI's rules)."""
    return parse_config(read_file(path), str(path))


def parse_learned(text: str, filename: str = "<learned>") -> dict[str, list[LearnedRoute]]:
    """An offline learned file: ``{attachment: [{prefix, as_path}, ...]}`` (product.md)."""
    raw = read_yaml(text, filename)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError([Problem(filename, "<file>", None, "schema", "the file is not a YAML mapping",
                                   "write attachment: [{prefix: CIDR, as_path: [ASN]}]")])
    result: dict[str, list[LearnedRoute]] = {}
    problems: list[Problem] = []
    for name, routes in raw.items():
        if not isinstance(routes, list):
            problems.append(Problem(filename, str(name), None, "schema", "expected a list of routes",
                                    "write - {prefix: CIDR, as_path: [ASN]} lines under the attachment"))
            continue
        result[str(name)] = []
        for index, route in enumerate(routes):
            try:
                result[str(name)].append(LearnedRoute.model_validate(route))
            except ValidationError as exc:
                for error in exc.errors(include_url=False):
                    ctx = error.get("ctx") or {}
                    field = f"[{index}]" + "".join(f".{p}" if isinstance(p, str) else f"[{p}]"
                                                   for p in error["loc"])
                    problems.append(Problem(filename, str(name), field, ctx.get("rule", "schema"),
                                            ctx.get("msg", error["msg"]),
                                            ctx.get("fix", "write {prefix: CIDR, as_path: [ASN, ...]}")))
    if problems:
        raise ConfigError(problems)
    return result


def load_learned(path: str | Path) -> dict[str, list[LearnedRoute]]:
    return parse_learned(read_file(path), str(path))

