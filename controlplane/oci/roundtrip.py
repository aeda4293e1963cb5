"""Editing a YAML file in place: the changed values change, every other byte of the file stays.

How it works, in three steps (``oci/writeback.py`` decides *what* changes, this module *how*):

1. :func:`load` reads the text with ``ruamel.yaml`` in round-trip mode: mappings and sequences
   keep their order, their flow or block style and the comments attached to them; the indentation
   of the file is measured (:func:`_indent`) so that the dumper writes new lines the way the file
   writes the old ones.
2. The caller changes the loaded document with :func:`patch`, which never replaces a node it can
   update: a mapping keeps its keys (and their end-of-line comments) and only the values that
   differ are set; a sequence keeps each item that is still wanted - found by equality, else by
   its ``name``/``destination``/``priority`` - with its comments, and new items take the flow or
   block style of their siblings. A scalar equal to the wanted value keeps its quoting.
3. :func:`dump` serialises the document twice - before and after the change - and carries the
   difference over to the original text (:func:`_carry`): the lines the change did not touch are
   taken from the file itself, so whatever ruamel would normalise there (``~`` or an empty value
   for null, ``yes``, odd indentation, trailing blanks) is left exactly as the user wrote it; only
   the lines of the changed values are ruamel's.

Nothing here knows the DRG configuration; the caller checks that the result loads back to what it
wanted and falls back otherwise.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from dataclasses import dataclass
from difflib import SequenceMatcher
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import CommentMark, YAMLError
from ruamel.yaml.representer import RoundTripRepresenter
from ruamel.yaml.tokens import CommentToken

IDENTITY_KEYS = ("name", "destination", "priority", "prefix")  # what names a list item in the file


class _Representer(RoundTripRepresenter):
    """Round-trip representer writing null as ``null`` (ruamel's default is an empty value)."""


def _null(representer: RoundTripRepresenter, _data: None) -> Any:
    return representer.represent_scalar("tag:yaml.org,2002:null", "null")


_Representer.add_representer(type(None), _null)


@dataclass
class Document:
    """A loaded file: the original text, the round-trip tree and the YAML instance that writes it."""

    text: str
    root: CommentedMap
    yaml: YAML
    before: str  # the unchanged tree as ruamel writes it


def _yaml() -> YAML:
    yaml = YAML(typ="rt")
    yaml.Representer = _Representer
    yaml.preserve_quotes = True
    yaml.width = 4096  # never fold a long line the user wrote on one line
    return yaml


def load(text: str) -> Document | None:
    """The file as a round-trip tree, or None if it is not YAML with a mapping at the top."""
    yaml = _yaml()
    try:
        root = yaml.load(text)
    except YAMLError:
        return None
    if not isinstance(root, CommentedMap):
        return None
    mapping, sequence, offset = _indent(root)
    yaml.indent(mapping=mapping, sequence=sequence, offset=offset)
    return Document(text, root, yaml, _serialise(yaml, root))


def dump(doc: Document) -> str:
    """The file's text with the changes made to ``doc.root`` since :func:`load`."""
    return _carry(doc.text, doc.before, _serialise(doc.yaml, doc.root))


def _serialise(yaml: YAML, root: CommentedMap) -> str:
    out = io.StringIO()
    yaml.dump(root, out)
    return out.getvalue()


def _indent(root: CommentedMap) -> tuple[int, int, int]:
    """(mapping, sequence, offset) indentation of the file, from the first nested block of each kind."""
    mapping: int | None = None
    sequence: tuple[int, int] | None = None
    stack: list[CommentedMap] = [root]
    while stack and (mapping is None or sequence is None):
        node = stack.pop(0)
        for key, value in node.items():
            _line, column = node.lc.key(key)
            if isinstance(value, CommentedMap) and value and not value.fa.flow_style():
                if mapping is None:
                    mapping = value.lc.key(next(iter(value)))[1] - column
                stack.append(value)
            elif isinstance(value, CommentedSeq) and value and not value.fa.flow_style():
                item_column = value.lc.item(0)[1]
                if sequence is None:
                    sequence = (item_column - column, item_column - column - 2)
                stack.extend(v for v in value if isinstance(v, CommentedMap) and not v.fa.flow_style())
    seq, offset = sequence or (2, 0)
    return mapping or 2, max(seq, offset + 2), max(offset, 0)


# ---------------------------------------------------------------------------------------------- changes

def _same(node: Any, value: Any) -> bool:
    """Equal as data (a CommentedMap equals the dict it holds); True is not 1 here."""
    if isinstance(node, bool) != isinstance(value, bool):
        return False
    if isinstance(node, Mapping) and isinstance(value, Mapping):
        return node.keys() == value.keys() and all(_same(node[k], value[k]) for k in value)
    if isinstance(node, list) and isinstance(value, list):
        return len(node) == len(value) and all(_same(a, b) for a, b in zip(node, value, strict=True))
    if isinstance(node, Mapping | list) or isinstance(value, Mapping | list):
        return False
    return bool(node == value)


def _identity(item: Any) -> tuple[str, Any] | None:
    if not isinstance(item, Mapping):
        return None
    return next(((k, item[k]) for k in IDENTITY_KEYS if k in item), None)


def fresh(value: Any, flow: bool = False) -> Any:
    """Plain data as round-trip nodes; ``flow`` writes a new mapping or list as ``{...}``/``[...]``."""
    if isinstance(value, Mapping):
        node = CommentedMap((k, fresh(v)) for k, v in value.items())
        if flow:
            node.fa.set_flow_style()
        return node
    if isinstance(value, list):
        seq = CommentedSeq(fresh(v) for v in value)
        if flow:
            seq.fa.set_flow_style()
        return seq
    return value


def patch(node: Any, value: Any) -> Any:
    """``node`` changed in place to hold ``value`` (a new node only where a scalar or type changes).
    The comment lines that follow the node stay after it, whatever becomes its last element."""
    if not isinstance(node, CommentedMap | CommentedSeq):
        return node if _same(node, value) else fresh(value)
    tail = _take_tail(node)
    updated = _patch(node, value)
    _give_tail(updated, tail)
    return updated


def _patch(node: Any, value: Any) -> Any:
    if isinstance(node, CommentedMap) and isinstance(value, Mapping):
        for key in [k for k in node if k not in value]:
            del node[key]
        for key, wanted in value.items():
            if key not in node:
                node[key] = fresh(wanted)
            else:
                updated = patch(node[key], wanted)
                if updated is not node[key]:
                    node[key] = updated
        return node
    if isinstance(node, CommentedSeq) and isinstance(value, list):
        _patch_seq(node, value)
        return node
    if _same(node, value):
        return node
    return fresh(value)


def _slot(node: Any) -> tuple[dict[Any, Any], Any, int] | None:
    """Where ruamel keeps the comment lines that follow a block collection: on its deepest last scalar
    (``ca.items[key][2]`` of a mapping, ``ca.items[index][0]`` of a sequence)."""
    while isinstance(node, CommentedMap | CommentedSeq) and node and not node.fa.flow_style():
        last = next(reversed(node)) if isinstance(node, CommentedMap) else len(node) - 1
        child = node[last]
        if isinstance(child, CommentedMap | CommentedSeq) and child and not child.fa.flow_style():
            node = child
            continue
        return node.ca.items, last, 2 if isinstance(node, CommentedMap) else 0
    return None


def _take_tail(node: Any) -> str:
    """Remove and return the whole comment lines after ``node`` (its last line's own comment stays)."""
    slot = _slot(node)
    entry = slot[0].get(slot[1]) if slot else None
    token = entry[slot[2]] if slot and entry and len(entry) > slot[2] else None
    if not isinstance(token, CommentToken) or "\n" not in token.value:
        return ""
    head, _, tail = token.value.partition("\n")
    token.value = head + "\n"
    return tail


def _give_tail(node: Any, tail: str) -> None:
    if not tail:
        return
    slot = _slot(node)
    if slot is None:
        return
    items, key, index = slot
    entry = items.setdefault(key, [None, None, None, None])
    while len(entry) <= index:
        entry.append(None)
    token = entry[index]
    if isinstance(token, CommentToken):
        token.value = token.value + tail if token.value.endswith("\n") else token.value + "\n" + tail
    else:
        entry[index] = CommentToken("\n" + tail, CommentMark(0), None)


def _match(old: list[Any], used: set[int], wanted: Any) -> int | None:
    """The old item that stands for ``wanted``: an equal one first, else one with the same identity."""
    for same in (True, False):
        for index, item in enumerate(old):
            if index in used:
                continue
            if _same(item, wanted) if same else (_identity(item) is not None and _identity(item) == _identity(wanted)):
                return index
    return None


def _patch_seq(seq: CommentedSeq, items: list[Any]) -> None:
    old = list(seq)
    comments = dict(seq.ca.items)
    sibling_flow = any(isinstance(o, CommentedMap | CommentedSeq) and o.fa.flow_style() for o in old)
    used: set[int] = set()
    kept: list[tuple[Any, int | None]] = []
    for wanted in items:
        index = _match(old, used, wanted)
        if index is None:
            kept.append((fresh(wanted, flow=sibling_flow), None))
        else:
            used.add(index)
            kept.append((patch(old[index], wanted), index))
    del seq[:]
    seq.ca.items.clear()
    seq.extend(node for node, _ in kept)
    for position, (_node, index) in enumerate(kept):
        if index is not None and index in comments:
            seq.ca.items[position] = comments[index]
    if not old and items:
        seq.fa.set_block_style()  # ``[]`` that gets items becomes a block list


# ---------------------------------------------------------------------------------------------- text

def _origins(text: list[str], before: list[str]) -> list[list[str]]:
    """For each line ruamel wrote for the unchanged tree, the line(s) of the file it stands for."""
    origin: list[list[str]] = [[line] for line in before]
    pending: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, text, before, autojunk=False).get_opcodes():
        if tag == "delete":  # lines ruamel does not write at all: keep them with the next line
            pending.extend(text[i1:i2])
            continue
        if tag in ("equal", "replace") and i2 - i1 == j2 - j1:
            for k in range(j2 - j1):
                origin[j1 + k] = [text[i1 + k]]
        elif tag == "replace":
            origin[j1] = text[i1:i2]
            for k in range(j1 + 1, j2):
                origin[k] = []
        else:  # insert: lines only ruamel writes
            for k in range(j1, j2):
                origin[k] = []
        if pending and j2 > j1:
            origin[j1] = pending + origin[j1]
            pending = []
    if pending and origin:
        origin[-1] = origin[-1] + pending
    return origin


def _carry(text: str, before: str, after: str) -> str:
    """``after`` with each line it shares with ``before`` written as the file ``text`` writes it."""
    if before == text:
        return after
    origin = _origins(text.splitlines(keepends=True), before.splitlines(keepends=True))
    old, new = before.splitlines(keepends=True), after.splitlines(keepends=True)
    out: list[str] = []
    for tag, i1, i2, j1, j2 in SequenceMatcher(None, old, new, autojunk=False).get_opcodes():
        if tag == "equal":
            for i in range(i1, i2):
                out.extend(origin[i])
        else:
            out.extend(new[j1:j2])
    return "".join(out)
