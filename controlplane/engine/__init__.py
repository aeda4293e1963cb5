"""The pure route engine: configuration and route changes in, exact table and advertisement diffs out.

``engine`` holds the :class:`RouteEngine` (offers per attachment, conflict resolution, exports);
``tables`` the compact route store (only contested destinations stored, tables with the same imports
sharing one store); ``rules`` what a rule is and means (``RuleContext``); ``changes`` what a change
produced; ``reconfigure`` the diff
between two engines when the configuration changes; ``rpc`` remote peering and the fabric of DRGs;
``trace`` the packet walk across DRG passes, DRGs (over RPCs) and VCNs (``vcn_walk`` the VCN locations,
``hops`` the hop JSON); ``offline`` the learned-routes file of the offline mode. Imports ``config`` and
``prefix``; no I/O, no asyncio.
"""
