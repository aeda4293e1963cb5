"""OCI's REST API (``/20160918/...``) over the emulated DRG, for the OCI CLI, SDKs and Terraform.

``scope`` takes one snapshot of every DRG of the daemon and finds a request's DRG from its ids;
``views`` builds the SDK models' JSON from the snapshot of one DRG; ``requests`` turns a create/update
body into a new configuration (``vcn_tables`` does both for VCN route tables); ``writeback`` saves
accepted changes into the YAML file (under ``drgs[i]`` of a multi-DRG file), editing it in place with
``roundtrip``; ``http`` holds the request plumbing (paging, sorting, filters, etags, errors); ``reads``
and ``rpc`` the read handlers, ``api`` the change handlers and the mounting. Reads the daemon only
through a protocol (``scope.OciTarget``), never imports it.
"""
