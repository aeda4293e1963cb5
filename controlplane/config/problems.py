"""What is wrong with a configuration, said once: :class:`Problem`, :class:`ConfigError`, :class:`Report`.

A :class:`Problem` names the file, the object, the field, the rule that decided (an R-number of
oci-drg-semantics.md, or ``schema``/``yaml`` for shape errors), what is wrong and the fix; a
:class:`ConfigError` carries every problem of a file, and nothing of that file is applied. For OCI's
rules, a check calls ``error`` (OCI would refuse the file) or ``warn`` (accepted but likely wrong)
on the file's :class:`Report` with the object, the field, the rule and a fix; ``once`` keeps a site
that several rules find from being reported twice. The outcome is a :class:`Validation`. The general checks
(``config/validate.py``), the IPSec-over-FastConnect ones (``config/ipsec.py``) and the transit ones
(``config/transit.py``: VCN objects and the ``W-...`` warnings, whose rule is the warning code) write here;
:func:`did_you_mean` suggests the closest name for a dangling reference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a file: where, which rule, what, and how to fix it."""

    file: str
    object: str
    field: str | None
    rule: str
    message: str
    fix: str
    drg: str | None = None  # the DRG of a multi-DRG file (``drgs:``) the object belongs to

    def to_json(self) -> dict[str, str | None]:
        doc = {"object": self.object, "field": self.field, "rule": self.rule,
               "message": self.message, "fix": self.fix}
        if self.drg is not None:
            doc["drg"] = self.drg
        return doc

    def __str__(self) -> str:
        where = f"{self.object} {self.field}" if self.field else self.object
        if self.drg is not None:
            where = f"{self.drg}: {where}"
        return f"{self.file}: {where}: {self.message} [{self.rule}]; fix: {self.fix}"


class ConfigError(Exception):
    """Raised with every problem of a file; nothing of that file is applied."""

    def __init__(self, problems: list[Problem]) -> None:
        super().__init__("\n".join(str(p) for p in problems))
        self.problems = problems


@dataclass
class Validation:
    """The outcome of :func:`validate`: errors (the file is rejected) and warnings."""

    errors: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Report:
    """Collects problems for one file; statement-level findings are reported once."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.result = Validation()
        self.seen: set[tuple[str, str | None]] = set()

    def error(self, obj: str, fld: str | None, rule: str, message: str, fix: str) -> None:
        self.result.errors.append(Problem(self.file, obj, fld, rule, message, fix))

    def warn(self, obj: str, fld: str | None, rule: str, message: str, fix: str) -> None:
        self.result.warnings.append(Problem(self.file, obj, fld, rule, message, fix))

    def once(self, obj: str, fld: str | None) -> bool:
        """True the first time a site is reported (R44 and R41 may both find one statement)."""
        if (obj, fld) in self.seen:
            return False
        self.seen.add((obj, fld))
        return True


def _distance(a: str, b: str) -> int:
    """Optimal-string-alignment distance: edits, with a swap of neighbours counting as one."""
    rows = [list(range(len(b) + 1))]
    for i in range(1, len(a) + 1):
        row = [i] + [0] * len(b)
        for j in range(1, len(b) + 1):
            row[j] = min(rows[-1][j] + 1, row[j - 1] + 1, rows[-1][j - 1] + (a[i - 1] != b[j - 1]))
            if i > 1 and j > 1 and a[i - 1] == b[j - 2] and a[i - 2] == b[j - 1]:
                row[j] = min(row[j], rows[-2][j - 2] + 1)
        rows.append(row)
    return rows[-1][-1]


def did_you_mean(name: str, candidates: Iterable[str]) -> str:
    """`` (did you mean X?)`` for the closest candidate (a typo or two away), else ``""``."""
    scored = sorted((_distance(name, c), abs(len(c) - len(name)), c) for c in candidates)
    if scored and scored[0][0] <= max(1, len(name) // 3):
        return f" (did you mean {scored[0][2]}?)"
    return ""
