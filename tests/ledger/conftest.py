"""Fixtures of the ledger tests (helpers live in ledger_helpers.py)."""

from ledger_helpers import keyring, master_key, raw

__all__ = ["keyring", "master_key", "raw"]
