"""How OCI-rule checks report: one :class:`Report` per file collects errors and warnings.

How it works: a check calls ``error`` (OCI would refuse the file) or ``warn`` (accepted but likely
wrong) with the object, the field, the rule and a fix; ``once`` keeps a site that several rules find
from being reported twice. The outcome is a :class:`Validation`. Both the general checks
(``policy.py``) and the IPSec-over-FastConnect ones (``policy_ipsec.py``) write here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from controlplane.config import Problem


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
