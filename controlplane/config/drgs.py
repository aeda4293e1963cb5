"""Several DRGs in one file (``drgs:``, oci-drg-transit.md section 7): reading, checking, the shapes.

A file is either today's single-DRG file (``drg:`` and its objects at the top level) or a multi-DRG
file: a ``drgs:`` list whose items hold ``drg``, ``vcns``, ``attachments``, ``route_tables`` and
``distributions``, with ``speaker``, ``api``, ``events`` and ``onprem`` shared at the top level (one
daemon, one BGP listener: sessions are matched by peer address, R109). What the rest of the program
handles is a :data:`Design`: one :class:`DrgConfig` for a single-DRG file, a list of them for a
``drgs:`` file (even of one item). Every item becomes a full DrgConfig with the shared sections
copied in, and ``onprem`` split by the DRG that holds each entry's session.

Checks: every DRG is checked alone (``config.validate.validate``, each problem tagged with its DRG),
then the file as a whole (``config.peering``: unique names, mutual RPC peers R94, R103, R108,
sockets). Problems name the file, the DRG, the object, the field, the rule and a fix.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from controlplane.config.effective_json import config_json
from controlplane.config.fields import StrictModel
from controlplane.config.load import config_from_data, problems_from_validation, read_file, read_yaml
from controlplane.config.problems import ConfigError, Problem, Validation, did_you_mean
from controlplane.config.schema import ApiSection, DrgConfig, EventsSection, Onprem, SpeakerSection

Design = DrgConfig | list[DrgConfig]  # a single-DRG file, or the DRGs of a ``drgs:`` file in file order
ITEM_KEYS = ("drg", "vcns", "attachments", "route_tables", "distributions")
SHARED_KEYS = ("speaker", "api", "events", "onprem")
SHARED_OBJECTS = frozenset({"speaker", "api", "events", "speaker/api"})  # problems reported once per file


class SharedSections(StrictModel):
    """The top level of a multi-DRG file, but for ``drgs``."""

    speaker: SpeakerSection = SpeakerSection()
    api: ApiSection = ApiSection()
    events: EventsSection = EventsSection()
    onprem: list[Onprem] = []


def configs_of(design: Design) -> list[DrgConfig]:
    return [design] if isinstance(design, DrgConfig) else list(design)


def is_multi(design: Design) -> bool:
    return not isinstance(design, DrgConfig)


# ---------------------------------------------------------------------------------------------- reading

def _owners(items: list[Any]) -> dict[str, str]:
    """Session name -> the DRG (or ``drgs[i]``) whose attachment it is, read from the raw items."""
    owners: dict[str, str] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            continue
        label = _label(item, i)
        for att in item.get("attachments") or []:
            if isinstance(att, dict) and isinstance(att.get("name"), str):
                owners.setdefault(att["name"], label)
                bgp = att.get("bgp")
                if isinstance(bgp, dict) and bgp.get("ipv6"):
                    owners.setdefault(f"{att['name']}.ipv6", label)  # a dual-stack VC's IPv6 session (R53)
    return owners


def _label(item: Any, index: int) -> str:
    drg = item.get("drg") if isinstance(item, dict) else None
    name = drg.get("name") if isinstance(drg, dict) else None
    return name if isinstance(name, str) else f"drgs[{index}]"


def _top_level(raw: dict[str, Any], filename: str) -> list[Problem]:
    problems = []
    for key in raw:
        if key in ("drgs", *SHARED_KEYS):
            continue
        if key in ITEM_KEYS:
            problems.append(Problem(filename, str(key), None, "schema", f"{key} belongs to one DRG in a "
                                    "multi-DRG file", f"move {key} into an item of drgs"))
        else:
            problems.append(Problem(filename, str(key), None, "schema", f"unknown top-level section {key}",
                                    f"remove {key}; a drgs: file has drgs, speaker, api, events and onprem"))
    if not isinstance(raw["drgs"], list) or not raw["drgs"]:
        problems.append(Problem(filename, "drgs", None, "schema", "drgs must be a non-empty list of DRGs",
                                "write drgs: [{drg: {name: ...}, vcns: [...], attachments: [...]}, ...]"))
    return problems


def _shared(raw: dict[str, Any], filename: str) -> tuple[SharedSections, list[Problem]]:
    try:
        return SharedSections.model_validate({k: raw[k] for k in SHARED_KEYS if k in raw}), []
    except ValidationError as exc:
        return SharedSections(), problems_from_validation(exc, raw, filename)


def _item(item: Any, index: int, shared: SharedSections, onprem: list[Onprem],
          filename: str) -> tuple[DrgConfig | None, list[Problem]]:
    label = _label(item, index)
    if not isinstance(item, dict):
        return None, [Problem(filename, f"drgs[{index}]", None, "schema", "a DRG item must be a mapping",
                              "write {drg: {name: ...}, vcns: [...], attachments: [...], ...}")]
    problems = []
    for key in item:
        if key in ITEM_KEYS:
            continue
        shared_key = key in SHARED_KEYS
        problems.append(Problem(filename, label, str(key), "schema",
                                f"{key} is shared by every DRG of the file" if shared_key
                                else f"unknown field {key} of a DRG item",
                                f"move {key} to the top level of the file" if shared_key
                                else f"remove {key}; a DRG item has {', '.join(ITEM_KEYS)}", label))
    data = {k: item[k] for k in ITEM_KEYS if k in item}
    data.update(speaker=shared.speaker, api=shared.api, events=shared.events, onprem=onprem)
    try:
        config = DrgConfig.model_validate(data)
    except ValidationError as exc:
        problems += [dataclasses.replace(p, drg=label) for p in problems_from_validation(exc, data, filename)]
        return None, problems
    return (None if problems else config), problems


def drgs_from_data(raw: dict[str, Any], filename: str) -> list[DrgConfig]:
    """A ``drgs:`` file's data -> one DrgConfig per item; ConfigError with every problem of the file."""
    problems = _top_level(raw, filename)
    if problems:
        raise ConfigError(problems)
    items: list[Any] = raw["drgs"]
    names: dict[str, int] = {}
    for index, item in enumerate(items):
        label = _label(item, index)
        first = names.setdefault(label, index)
        if first != index:  # the DRG of a session, an RPC's peer and --drg find a DRG by its name
            problems.append(Problem(filename, f"drgs[{index}]", "drg.name", "names", f"drgs[{first}] and "
                                    f"drgs[{index}] are both named {label}", f"rename drgs[{index}]: a DRG name "
                                    "identifies it (RPC peers, --drg)", label))
    if problems:
        raise ConfigError(problems)
    shared, problems = _shared(raw, filename)
    owners = _owners(items)
    for entry in shared.onprem:
        if entry.session not in owners:
            hint = did_you_mean(entry.session, owners)
            problems.append(Problem(filename, entry.name, "session", "reference", f"attachment {entry.session} "
                                    "is not defined in any DRG of the file",
                                    f"name a VIRTUAL_CIRCUIT or BGP tunnel attachment{hint}"))
    configs = []
    for index, item in enumerate(items):
        mine = [p for p in shared.onprem if owners.get(p.session) == _label(item, index)]
        config, found = _item(item, index, shared, mine, filename)
        problems += found
        if config is not None:
            configs.append(config)
    if problems:
        raise ConfigError(problems)
    return configs


def parse_design(text: str, filename: str = "<config>") -> Design:
    """A single-DRG or multi-DRG file (schema level); raises ConfigError with every problem."""
    raw = read_yaml(text, filename)
    if isinstance(raw, dict) and "drgs" in raw:
        return drgs_from_data(raw, filename)
    return config_from_data(raw, filename)


def load_design(path: str | Path) -> Design:
    return parse_design(read_file(path), str(path))


def load_drgs(path: str | Path) -> list[DrgConfig]:
    """Every DRG of a file (one for a single-DRG file), schema level."""
    return configs_of(load_design(path))


# ---------------------------------------------------------------------------------------------- checking

def validate_design(design: Design, file: str = "<config>") -> Validation:
    """OCI's rules on every DRG, then on the file as a whole (``config.peering``)."""
    from controlplane.config.peering import check_file
    from controlplane.config.validate import validate

    result = Validation()
    seen: set[tuple[str, str | None, str, str]] = set()
    for config in configs_of(design):
        found = validate(config, file)
        for kind, problems in (("errors", found.errors), ("warnings", found.warnings)):
            for p in problems:
                if is_multi(design):
                    if p.object in SHARED_OBJECTS:  # the same shared section, found in every DRG
                        if (p.object, p.field, p.rule, p.message) in seen:
                            continue
                        seen.add((p.object, p.field, p.rule, p.message))
                    else:
                        p = dataclasses.replace(p, drg=config.drg.name)
                getattr(result, kind).append(p)
    cross = check_file(configs_of(design), file, is_multi(design))
    result.errors += cross.errors
    result.warnings += cross.warnings
    return result


def require_valid_design(design: Design, filename: str) -> list[str]:
    """Validate or raise ConfigError with every error; else the warnings (as text)."""
    result = validate_design(design, filename)
    if result.errors:
        raise ConfigError(result.errors)
    return [f"{w.drg}: {w.message}" if w.drg else w.message for w in result.warnings]


def parse_valid_design(text: str, filename: str) -> tuple[Design, list[str]]:
    design = parse_design(text, filename)
    return design, require_valid_design(design, filename)


def load_valid_design(path: str | Path) -> tuple[Design, list[str]]:
    return parse_valid_design(read_file(path), str(path))


def validate_design_file(path: str | Path) -> tuple[Design | None, Validation]:
    """Load and check a file: schema problems or OCI-rule problems, all of them (``drg validate``)."""
    try:
        design = load_design(path)
    except ConfigError as exc:
        return None, Validation(errors=list(exc.problems))
    return design, validate_design(design, str(path))


def design_json(result: Validation, design: Design | None) -> dict[str, Any]:
    """``drg validate --json``: a single-DRG file as before; a multi-DRG file's effective
    configuration per DRG: ``{"valid": true, "warnings": [...], "drgs": [{"drg", "config"}]}``."""
    if not result.ok or design is None:
        return {"valid": False, "errors": [p.to_json() for p in result.errors]}
    warnings = [p.to_json() for p in result.warnings]
    if isinstance(design, DrgConfig):
        return {"valid": True, "warnings": warnings, "config": config_json(design)}
    return {"valid": True, "warnings": warnings,
            "drgs": [{"drg": c.drg.name, "config": config_json(c)} for c in design]}


def shared_of(design: Design) -> DrgConfig:
    """The DRG whose speaker, api and events sections stand for the file's (the first)."""
    return configs_of(design)[0]
