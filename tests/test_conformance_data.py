"""The conformance suites must be present: their absence fails the run instead of
silently collecting zero cases."""

from __future__ import annotations

from conformance_paths import ROOT


def test_conformance_data_is_present() -> None:
    for part in (
        "openfga/consolidated_1_1_tests.yaml",
        "openfga/abac_tests.yaml",
        "openfga/matrix/check_matrix_tests.yaml",
        "openfga-language/tests/data/dsl-semantic-validation-cases.yaml",
        "openfga-language/tests/data/transformer",
    ):
        assert (ROOT / part).exists(), (
            f"conformance data missing: {ROOT / part} (set KEYPLANE_CONFORMANCE_DIR)"
        )
