"""The seeded database the MCP tests share (a module, not conftest, so it imports by a unique name)."""

from __future__ import annotations

from dataclasses import dataclass

from keyplane.config import Settings


@dataclass(frozen=True)
class Seeded:
    url: str
    keys: dict[str, str]  # role name → secret
    key_ids: dict[str, str]

    def settings(self, **overrides: object) -> Settings:
        return Settings.from_env(database_url=self.url, **overrides)
