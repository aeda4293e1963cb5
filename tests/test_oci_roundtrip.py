"""The in-place YAML edit behind the OCI API's write-back (``oci/roundtrip.py``), on awkward files.

What ruamel would normalise (``~``, an empty value, ``yes``, three-space indentation, a document
marker, spaces inside ``[ ]``) stays as written on every line the change does not touch; comment
lines that follow a list stay after it when items are appended to it or its last item is removed;
an item's end-of-line comment stays with the item even when others before it go.
"""

from __future__ import annotations

from typing import Any

from controlplane.oci import roundtrip as rt

ODD = """---
# head
drg:
   name: drg1     # three-space indent
   router_id: ~
flag: yes
empty:
route_tables:
- name: a   # table a
  static_routes: [ {destination: 10.0.0.0/8, next_hop: x} ]

  # comment before b
- name: b
  static_routes:
  - destination: 10.1.0.0/16   # one
    next_hop: y
  - destination: 10.2.0.0/16   # two
    next_hop: y
# comment before distributions
distributions: []   # none yet
"""


def edit(text: str, section: str, value: Any) -> str:
    doc = rt.load(text)
    assert doc is not None
    rt.patch(doc.root[section], value)
    return rt.dump(doc)


def test_untouched_lines_stay_byte_for_byte() -> None:
    out = edit(ODD, "route_tables", [
        {"name": "a", "static_routes": [{"destination": "10.0.0.0/8", "next_hop": "x"},
                                        {"destination": "10.9.0.0/16", "next_hop": "x"}]},
        {"name": "b", "static_routes": [{"destination": "10.2.0.0/16", "next_hop": "z"}]}])
    assert out == ODD.replace(
        "[ {destination: 10.0.0.0/8, next_hop: x} ]",
        "[{destination: 10.0.0.0/8, next_hop: x}, {destination: 10.9.0.0/16, next_hop: x}]").replace(
        "  - destination: 10.1.0.0/16   # one\n    next_hop: y\n", "").replace(
        "10.2.0.0/16   # two\n    next_hop: y", "10.2.0.0/16   # two\n    next_hop: z")
    assert edit(ODD, "route_tables", [{"name": "a", "static_routes": [{"destination": "10.0.0.0/8", "next_hop": "x"}]},
                                      {"name": "b", "static_routes": [{"destination": "10.1.0.0/16", "next_hop": "y"},
                                                                      {"destination": "10.2.0.0/16", "next_hop": "y"}]}
                                      ]) == ODD  # nothing changed: not one byte


def test_comment_lines_after_a_list_stay_after_it() -> None:
    removed = edit(ODD, "route_tables", [{"name": "a", "static_routes": [{"destination": "10.0.0.0/8",
                                                                          "next_hop": "x"}]}])
    assert removed.endswith("  static_routes: [ {destination: 10.0.0.0/8, next_hop: x} ]\n"
                            "# comment before distributions\ndistributions: []   # none yet\n")
    assert "comment before b" not in removed  # b's own leading comment went with b
    text = "a:\n  - {x: 1}   # one\n\n  # about b\nb: 2\n"
    assert edit(text, "a", [{"x": 1}, {"x": 2}]) == "a:\n  - {x: 1}   # one\n  - {x: 2}\n\n  # about b\nb: 2\n"


def test_a_flow_list_that_gets_items_becomes_a_block_list() -> None:
    out = edit(ODD, "distributions", [{"name": "d", "statements": [{"priority": 1, "match": "all"}]}])
    assert out.endswith("# comment before distributions\ndistributions:      # none yet\n- name: d\n  statements:\n"
                        "  - priority: 1\n    match: all\n")
    assert out.startswith(ODD[:ODD.index("# comment before distributions")])
