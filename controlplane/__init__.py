"""An OCI Dynamic Routing Gateway control-plane emulator that speaks real BGP.

Public API: :class:`Drg` (asyncio), :func:`load_config`, :func:`load_drgs` (every DRG of a file, one
or a ``drgs:`` list), :class:`ConfigError`, :class:`DrgConfig`.
They are loaded lazily (PEP 562), so importing a lower layer such as ``controlplane.bgp.session``
loads neither asyncio-level nor configuration-level libraries (aiohttp, aiomqtt, pydantic, yaml).
The package names no submodule in an import statement, not even for type checkers: every submodule
imports this package first, so any such import would be a cycle through it.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__all__ = ["ConfigError", "Drg", "DrgConfig", "load_config", "load_drgs"]
__version__ = "0.1.0"

_HOME = {"Drg": "controlplane.drg", "ConfigError": "controlplane.config.problems",
         "DrgConfig": "controlplane.config.schema", "load_config": "controlplane.config.load",
         "load_drgs": "controlplane.config.drgs"}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'controlplane' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value
    return value
