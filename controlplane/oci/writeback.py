"""Writing a changed configuration back to the file the daemon was started from (``drg run FILE``).

Changes made through OCI's REST API (``oci/api.py``) must survive a restart, and ``drg run FILE``
reads only FILE, so the daemon writes the new configuration into FILE itself:

- :func:`render` reads FILE as it is on disk now and changes only the DRG route tables,
  distributions and VCN route tables that differ between the old and the new configuration (an
  object OCI's defaults provided and the change touched, such as ``autogen-rt-vcn`` or a VCN's
  implicit ``default`` table, is added to the file). In a multi-DRG file (``drgs:``,
  ``config/drgs.py``) the same edit is made inside the item ``drgs[i]`` of each DRG that changed,
  found by its ``drg.name``; the other items and the shared sections are not touched. The edit
  goes through ``oci/roundtrip.py``: comments, key order, flow/block style, quoting and indentation
  of everything the change did not touch stay byte for byte, and a changed object keeps its own
  comments and the place of its keys.
  If the edited text would not load back to exactly the new objects (checked like ``drg apply``,
  the whole file), or FILE is unreadable or not a valid configuration any more, the whole running
  configuration is written instead, under a header that says so (the previous text stays in FILE.bak).
- :func:`write_atomic` writes to a temporary file in the same directory, fsyncs it, copies the
  current FILE to ``FILE.bak`` (replaced atomically as well), then renames the new file over FILE
  and fsyncs the directory: a crash leaves either the old or the new file, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import yaml
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from controlplane.config.drgs import ITEM_KEYS, Design, configs_of, parse_design, validate_design
from controlplane.config.problems import ConfigError
from controlplane.config.schema import Distribution, DrgConfig, Match, RouteTable, Statement
from controlplane.config.vcn import Vcn, VcnRouteTable
from controlplane.oci import roundtrip as rt


class Named(Protocol):
    @property
    def name(self) -> str: ...

HEADER = ("# Written whole by the DRG emulator after {what}: the file on disk did not load any more,\n"
          "# so it holds the running configuration; the previous version of this file is {backup}.\n")


def match_raw(match: Match) -> Any:
    """A match criterion as the file writes it (config.parse_match reads it back)."""
    if match.kind == "all":
        return "all"
    if match.kind == "attachment_type":
        return {"attachment_type": match.value}
    return {"attachment": match.value}


def statement_raw(statement: Statement) -> dict[str, Any]:
    raw: dict[str, Any] = {"priority": statement.priority, "match": match_raw(statement.match)}
    if statement.id is not None:
        raw["id"] = statement.id
    return raw


def table_raw(table: RouteTable, original: Mapping[str, Any] | None) -> dict[str, Any]:
    """The table as YAML data; keys the original entry had keep their place, even with default values."""
    full = table.model_dump(mode="json")
    full["static_routes"] = [r.model_dump(mode="json", exclude_defaults=True) for r in table.static_routes]
    brief = table.model_dump(mode="json", exclude_defaults=True)
    return _merge(full, brief, original)


def distribution_raw(dist: Distribution, original: Mapping[str, Any] | None) -> dict[str, Any]:
    full: dict[str, Any] = {"name": dist.name, "type": dist.type,
                            "statements": [statement_raw(s) for s in dist.statements],
                            "display_name": dist.display_name}
    brief = {k: v for k, v in full.items() if k == "name" or (k == "statements" and v) or
             (k == "type" and v != "IMPORT") or (k == "display_name" and v is not None)}
    return _merge(full, brief, original)


def _merge(full: dict[str, Any], brief: dict[str, Any], original: Mapping[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in original or {}:
        if key in full:
            out[key] = full[key]
    for key, value in brief.items():
        out.setdefault(key, value)
    return out


def vcn_table_raw(table: VcnRouteTable, original: Mapping[str, Any] | None) -> dict[str, Any]:
    """A VCN route table as YAML data (``config/vcn.py`` reads the targets back)."""
    rules = [{"destination": r.destination, "target": r.target.to_json(),
              **({"description": r.description} if r.description is not None else {})} for r in table.rules]
    full: dict[str, Any] = {"name": table.name, "rules": rules, "display_name": table.display_name}
    brief = {k: v for k, v in full.items() if k == "name" or (k == "rules" and v) or
             (k == "display_name" and v is not None)}
    return _merge(full, brief, original)


def full_raw(config: DrgConfig) -> dict[str, Any]:
    """The whole configuration as YAML data (defaults left out), sections in the schema's order."""
    raw: dict[str, Any] = config.model_dump(mode="json", exclude_defaults=True)
    for key, value in (("vcns", [_vcn_raw(v) for v in config.vcns]),
                       ("route_tables", [table_raw(t, None) for t in config.route_tables]),
                       ("distributions", [distribution_raw(d, None) for d in config.distributions])):
        if key in raw:
            raw[key] = value
    return raw


def full_design_raw(design: Design) -> dict[str, Any]:
    """A whole file as YAML data: one DRG as :func:`full_raw`; a ``drgs:`` file's items (their own
    sections) with the shared sections, ``onprem`` gathered from every DRG, after them."""
    if isinstance(design, DrgConfig):
        return full_raw(design)
    items = []
    for config in design:
        raw = full_raw(config)
        items.append({k: raw[k] for k in ITEM_KEYS if k in raw})
    shared = full_raw(design[0])
    out: dict[str, Any] = {"drgs": items, **{k: shared[k] for k in ("speaker", "api", "events") if k in shared}}
    onprem = [o.model_dump(mode="json", exclude_defaults=True) for c in design for o in c.onprem]
    if onprem:
        out["onprem"] = onprem
    return out


def _vcn_raw(vcn: Vcn) -> dict[str, Any]:
    raw: dict[str, Any] = vcn.model_dump(mode="json", exclude_defaults=True, exclude={"route_tables"})
    if vcn.route_tables:
        raw["route_tables"] = [vcn_table_raw(t, None) for t in vcn.route_tables]
    return raw


def _replace(parent: CommentedMap, key: str, old: Sequence[Named], new: Sequence[Named],
             dump: Callable[[Any, Mapping[str, Any] | None], dict[str, Any]]) -> None:
    """The list ``parent[key]`` with the objects that changed between ``old`` and ``new`` changed in
    place, the removed ones removed and the new ones appended; the others are not touched."""
    before = {o.name: o for o in old}
    after = {o.name: o for o in new}
    if before == after and [o.name for o in old] == [o.name for o in new]:
        return
    entries = parent.get(key)
    if entries is None and not new:
        return
    wanted: list[Any] = []
    for entry in entries if isinstance(entries, list) else []:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        if name in after and before.get(name) != after[name]:
            wanted.append(dump(after[name], entry))
        elif not (name in before and name not in after):
            wanted.append(entry)
    present = {e.get("name") for e in wanted if isinstance(e, Mapping)}
    wanted.extend(dump(o, None) for name, o in after.items() if name not in present)
    if isinstance(entries, CommentedSeq):
        rt.patch(entries, wanted)
    else:
        parent[key] = rt.fresh(wanted)


def _replace_vcn_tables(root: CommentedMap, old: DrgConfig, new: DrgConfig) -> None:
    """The VCN route tables of every VCN whose tables changed (the VCNs themselves are not API objects)."""
    before = {v.name: v for v in old.vcns}
    entries = root.get("vcns")
    for vcn in new.vcns:
        previous = before.get(vcn.name)
        if previous is None or previous.route_tables == vcn.route_tables:
            continue
        entry = next((e for e in entries or [] if isinstance(e, CommentedMap) and e.get("name") == vcn.name), None)
        if entry is None:
            raise LookupError(f"VCN {vcn.name} is not in the file")
        _replace(entry, "route_tables", previous.route_tables, vcn.route_tables, vcn_table_raw)


def _edit(root: CommentedMap, old: DrgConfig, new: DrgConfig) -> None:
    """One DRG's objects in ``root`` (the file, or its item ``drgs[i]``) changed from ``old`` to ``new``."""
    _replace(root, "route_tables", old.route_tables, new.route_tables, table_raw)
    _replace(root, "distributions", old.distributions, new.distributions, distribution_raw)
    _replace_vcn_tables(root, old, new)


def _edit_design(root: CommentedMap, old: Design, new: Design) -> None:
    if isinstance(new, DrgConfig):
        if not isinstance(old, DrgConfig):
            raise TypeError("a single-DRG configuration replaces a single-DRG one")
        _edit(root, old, new)
        return
    before = {c.drg.name: c for c in configs_of(old)}
    items = root.get("drgs")
    for config in new:
        previous = before.get(config.drg.name)
        if previous == config:
            continue
        entry = next((e for e in items if isinstance(e, CommentedMap) and isinstance(e.get("drg"), Mapping)
                      and e["drg"].get("name") == config.drg.name), None) if isinstance(items, list) else None
        if previous is None or entry is None:
            raise LookupError(f"DRG {config.drg.name} is not in the file")
        _edit(entry, previous, config)


def render(path: Path, old: Design, new: Design, what: str) -> str:
    """The new text of ``path``: its current text with the objects that changed from ``old`` to ``new``
    (one DRG, or the DRGs of a ``drgs:`` file)."""
    try:
        doc = rt.load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError):
        doc = None
    if doc is not None:
        try:
            _edit_design(doc.root, old, new)
            text = rt.dump(doc)
        except (LookupError, TypeError, ValueError):
            text = None
        if text is not None and _loads_as(text, new):
            return text
    header = HEADER.format(what=what, backup=f"{path.name}.bak")
    return header + yaml.safe_dump(full_design_raw(new), sort_keys=False, default_flow_style=False, width=120)


def _loads_as(text: str, new: Design) -> bool:
    """True if ``text`` is a valid file (``drg apply``'s checks) with exactly the DRGs of ``new`` and,
    in each, exactly the objects the API changes."""
    try:
        parsed = parse_design(text, "<write-back>")
    except ConfigError:
        return False
    if isinstance(parsed, DrgConfig) != isinstance(new, DrgConfig) or validate_design(parsed, "<write-back>").errors:
        return False
    got, want = configs_of(parsed), configs_of(new)
    return [c.drg.name for c in got] == [c.drg.name for c in want] and all(
        a.route_tables == b.route_tables and a.distributions == b.distributions
        and {v.name: v.route_tables for v in a.vcns} == {v.name: v.route_tables for v in b.vcns}
        for a, b in zip(got, want, strict=True))


def write_atomic(path: Path, text: str) -> Path:
    """Replace ``path`` with ``text`` atomically, keeping the previous file as ``<path>.bak``."""
    directory = path.parent
    tmp = directory / f".{path.name}.{os.getpid()}.tmp"
    backup = directory / f"{path.name}.bak"
    mode = None
    with contextlib.suppress(FileNotFoundError):
        mode = path.stat().st_mode & 0o7777
    with open(tmp, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    if mode is not None:
        os.chmod(tmp, mode)
        backup_tmp = directory / f".{path.name}.{os.getpid()}.bak.tmp"
        shutil.copy2(path, backup_tmp)
        with open(backup_tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(backup_tmp, backup)
    os.replace(tmp, path)
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return backup
