"""Writing a changed configuration back to the file the daemon was started from (``drg run FILE``).

Changes made through OCI's REST API (``oci/api.py``) must survive a restart, and ``drg run FILE``
reads only FILE, so the daemon writes the new configuration into FILE itself:

- :func:`render` reads FILE as it is on disk now and replaces only the route tables and
  distributions that differ between the old and the new configuration (an object OCI's defaults
  provided and the change touched, such as ``autogen-rt-vcn``, is added to the file). Every other
  section keeps its values and key order. YAML comments and flow/block styles are not preserved:
  the file is re-serialised, with a header line saying so (the previous text stays in FILE.bak).
  If the merged text would not load back to exactly the new objects, or FILE is unreadable or not
  a valid configuration any more, the whole running configuration is written instead.
- :func:`write_atomic` writes to a temporary file in the same directory, fsyncs it, copies the
  current FILE to ``FILE.bak`` (replaced atomically as well), then renames the new file over FILE
  and fsyncs the directory: a crash leaves either the old or the new file, never a mix.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path
from typing import Any

import yaml

from controlplane.config.load import parse_config
from controlplane.config.problems import ConfigError
from controlplane.config.schema import Distribution, DrgConfig, Match, RouteTable, Statement
from controlplane.config.validate import validate

HEADER = ("# Written by the DRG emulator after {what}.\n"
          "# Comments are not kept; the previous version of this file is {backup}.\n")


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


def table_raw(table: RouteTable, original: dict[str, Any] | None) -> dict[str, Any]:
    """The table as YAML data; keys the original entry had keep their place, even with default values."""
    full = table.model_dump(mode="json")
    full["static_routes"] = [r.model_dump(mode="json", exclude_defaults=True) for r in table.static_routes]
    brief = table.model_dump(mode="json", exclude_defaults=True)
    return _merge(full, brief, original)


def distribution_raw(dist: Distribution, original: dict[str, Any] | None) -> dict[str, Any]:
    full: dict[str, Any] = {"name": dist.name, "type": dist.type,
                            "statements": [statement_raw(s) for s in dist.statements],
                            "display_name": dist.display_name}
    brief = {k: v for k, v in full.items() if k == "name" or (k == "statements" and v) or
             (k == "type" and v != "IMPORT") or (k == "display_name" and v is not None)}
    return _merge(full, brief, original)


def _merge(full: dict[str, Any], brief: dict[str, Any], original: dict[str, Any] | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key in original or {}:
        if key in full:
            out[key] = full[key]
    for key, value in brief.items():
        out.setdefault(key, value)
    return out


def full_raw(config: DrgConfig) -> dict[str, Any]:
    """The whole configuration as YAML data (defaults left out)."""
    raw: dict[str, Any] = config.model_dump(mode="json", exclude_defaults=True,
                                            exclude={"route_tables", "distributions"})
    raw["route_tables"] = [table_raw(t, None) for t in config.route_tables]
    raw["distributions"] = [distribution_raw(d, None) for d in config.distributions]
    return raw


def _replace(entries: list[Any], old: list[Any], new: list[Any], dump: Any) -> list[Any]:
    """Entries of one section with the objects that changed between ``old`` and ``new`` replaced."""
    before = {o.name: o for o in old}
    after = {o.name: o for o in new}
    out: list[Any] = []
    for entry in entries:
        name = entry.get("name") if isinstance(entry, dict) else None
        if name in after and before.get(name) != after[name]:
            out.append(dump(after[name], entry))
        elif name in before and name not in after:
            continue
        else:
            out.append(entry)
    present = {e.get("name") for e in out if isinstance(e, dict)}
    out.extend(dump(o, None) for name, o in after.items() if name not in present)
    return out


def render(path: Path, old: DrgConfig, new: DrgConfig, what: str) -> str:
    """The new text of ``path``: its current content with the changed objects of ``new``."""
    header = HEADER.format(what=what, backup=f"{path.name}.bak")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError):
        raw = None
    if isinstance(raw, dict):
        merged = dict(raw)
        merged["route_tables"] = _replace(list(raw.get("route_tables") or []), old.route_tables,
                                          new.route_tables, table_raw)
        merged["distributions"] = _replace(list(raw.get("distributions") or []), old.distributions,
                                           new.distributions, distribution_raw)
        text = header + _dump(merged)
        if _loads_as(text, new):
            return text
    return header + _dump(full_raw(new))


def _dump(raw: dict[str, Any]) -> str:
    return yaml.safe_dump(raw, sort_keys=False, default_flow_style=False, width=120)


def _loads_as(text: str, new: DrgConfig) -> bool:
    """True if ``text`` is a valid configuration with exactly the tables and distributions of ``new``."""
    try:
        parsed = parse_config(text, "<write-back>")
    except ConfigError:
        return False
    if validate(parsed, "<write-back>").errors:
        return False
    return parsed.route_tables == new.route_tables and parsed.distributions == new.distributions


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
