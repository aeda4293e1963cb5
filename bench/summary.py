"""The closing table of ``make bench``: every headline figure beside its anchor and the goal it answers.

How it works: each part of a full run (the receivers' table, the sessions, the events, the dump, the
engine) adds its headline figures to :data:`SUMMARY` as it finishes - a figure, its ratio to the
anchor measured in the same run where one applies (BIRD 2, or the daemon's own default for the event
readers) and the goal from issue 13 with whether this run met it - and ``python -m bench`` prints
:func:`format_summary` last. The parts print their own detailed figures as before; this table only
collects them, so nothing here is measured twice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Row:
    what: str
    figure: str
    ratio: str  # "0.88x BIRD", or "" where no anchor applies
    goal: str
    met: bool | None  # None: no goal


class Summary:
    def __init__(self) -> None:
        self.rows: list[Row] = []

    def add(self, what: str, figure: str, ratio: str = "", goal: str = "", met: bool | None = None) -> None:
        self.rows.append(Row(what, figure, ratio, goal, met))


SUMMARY = Summary()


def format_summary(summary: Summary = SUMMARY) -> str:
    if not summary.rows:
        return ""
    header = ("figure", "this run", "vs anchor", "goal", "met")
    lines = [header] + [(r.what, r.figure, r.ratio, r.goal, "" if r.met is None else ("yes" if r.met else "NO"))
                        for r in summary.rows]
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    out = ["  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    out.insert(1, "  ".join("-" * w for w in widths))
    return "summary (ratios to anchors measured in this run)\n" + "\n".join(out)


__all__ = ["SUMMARY", "Row", "Summary", "format_summary"]
