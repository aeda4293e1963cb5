"""Validation tests' helpers: validate an edited example and list where the problems are."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controlplane.config.problems import Problem
from controlplane.config.validate import validate
from tests.support.factory import config, example

Edit = Callable[[dict[str, Any]], None]


def check(edit: Edit, name: str = "all-traffic") -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings) of the example ``name`` after ``edit``; every problem names its object,
    rule, message and fix."""
    raw = example(name)
    edit(raw)
    result = validate(config(raw), "t.yaml")
    for problem in result.errors + result.warnings:
        assert problem.object and problem.rule and problem.fix and problem.message
    return result.errors, result.warnings


def sites(found: list[Problem]) -> list[tuple[str, str | None, str]]:
    return [(p.object, p.field, p.rule) for p in found]
