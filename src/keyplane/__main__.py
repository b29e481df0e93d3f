"""``python -m keyplane`` — the same as the ``keyplane`` command."""

from keyplane.cli.main import app

app(prog_name="keyplane")
