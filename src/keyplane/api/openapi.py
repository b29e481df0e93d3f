"""The committed OpenAPI 3.1 document (``docs/openapi.json``): build it, write it.

``python -m keyplane.api.openapi [PATH]`` (or ``make openapi``) regenerates the file from
:func:`keyplane.api.create_app`; ``tests/api/test_api_openapi.py`` fails while the
committed file differs from what the app serves at ``/openapi.json``.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from keyplane.config import Settings
from keyplane.service.context import Services

__all__ = ["DEFAULT_PATH", "openapi_document", "render"]

DEFAULT_PATH = Path("docs") / "openapi.json"


def openapi_document() -> dict[str, Any]:
    """The document the server serves at ``/openapi.json`` (it depends on no data)."""
    from keyplane.api import create_app

    with tempfile.TemporaryDirectory() as tmp:
        svc = Services.open(Settings(database_url=f"sqlite:///{tmp}/openapi.db", poll_interval=0))
        try:
            doc: dict[str, Any] = create_app(svc).openapi()
        finally:
            svc.close()
    return doc


def render(doc: dict[str, Any]) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.write_text(render(openapi_document()), encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
