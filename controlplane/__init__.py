"""An OCI Dynamic Routing Gateway control-plane emulator that speaks real BGP.

Public API: :class:`Drg` (asyncio), :func:`load_config`, :class:`ConfigError`.
"""

from controlplane.api import Drg
from controlplane.config import ConfigError, DrgConfig, load_config

__all__ = ["ConfigError", "Drg", "DrgConfig", "load_config"]
__version__ = "0.1.0"
