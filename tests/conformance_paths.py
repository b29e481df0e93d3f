"""Where the external conformance suites live (read in place, never copied).

``KEYPLANE_CONFORMANCE_DIR`` wins; otherwise ``<repo>/../shared/conformance`` (the layout of
this workplace), then ``/work/shared/conformance`` (for a checkout made elsewhere, as CI's
clean checkout may be). ``tests/test_conformance_data.py`` fails loudly when none exists,
so missing data can never turn into silently empty test sets.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def conformance_root() -> Path:
    candidates = []
    if os.environ.get("KEYPLANE_CONFORMANCE_DIR"):
        candidates.append(Path(os.environ["KEYPLANE_CONFORMANCE_DIR"]))
    candidates += [REPO.parent / "shared" / "conformance", Path("/work/shared/conformance")]
    for c in candidates:
        if (c / "openfga").is_dir():
            return c
    return candidates[0]


ROOT = conformance_root()
