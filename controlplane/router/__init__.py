"""The DRG's heart, sans-IO: the Router between BGP sessions and route engines.

``router`` holds the :class:`Router` (one DRG: its engine, one BGP Peer per session, outputs for the
daemon); ``rpc_sessions`` the RPC sessions to DRGs run by other daemons (R109); ``rpc_codec`` how an
RPC route travels in a BGP UPDATE (provenance, network distance and DRG path as large communities).
Imports bgp, engine, config and events.event; no I/O.
"""
