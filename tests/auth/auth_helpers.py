"""Shared by the auth tests: a small tenant model and the in-process system caller."""

from __future__ import annotations

from keyplane.service.auth import Caller

MODEL = """\
model
  schema 1.1

type user

type group
  relations
    define member: [user, group#member]

type agent

type document
  relations
    define owner: [user]
    define viewer: [user, group#member, agent] or owner
"""

SYSTEM = Caller.system_caller()
