"""OCI's REST API (``/20160918/...``) over the emulated DRG, for the OCI CLI, SDKs and Terraform.

``views`` builds the SDK models' JSON from a snapshot; ``requests`` turns a create/update body into
a new configuration (``vcn_tables`` does both for VCN route tables); ``writeback`` saves accepted
changes into the YAML file, editing it in place with ``roundtrip``; ``http`` holds the
request plumbing (paging, sorting, filters, etags, errors); ``api`` the aiohttp handlers. Reads the
daemon only through a protocol, never imports it.
"""
