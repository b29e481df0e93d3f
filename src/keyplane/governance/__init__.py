"""Access requests, approvals and reviews (issue 7).

``records`` holds the plain records shared by storage (``storage/governance_sql.py``,
``storage/reviews_sql.py``), the in-memory
:class:`~keyplane.policy.state.PolicyState` (entitlements), the service operations and
the surfaces. This package imports nothing at import time (``keyplane.storage.base``
imports ``keyplane.governance.records``): import its modules directly.
"""
