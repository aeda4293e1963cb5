"""The configuration layer: what the user wrote, what OCI makes of it, and whether OCI would accept it.

``schema`` (pydantic models of the YAML file) and ``fields`` (field checks with the rule they come
from) parse; ``load`` reads files and turns pydantic errors into ``problems``; ``effective`` adds
OCI's defaults and system objects (auto-generated tables, loopbacks, IPv6 sessions); ``validate``
and ``ipsec`` check OCI's rules on the effective configuration. Imports only ``prefix`` from the
rest of the project; nothing here does I/O beyond reading the files it is given.
"""
