"""Fixtures of the ``ablate.run`` tests (helpers: tests/run/harness.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.run.harness import PROBES_MODULE, PROBES_SOURCE


@pytest.fixture(scope="package")
def probes_dir(tmp_path_factory) -> Path:
    """A folder holding the fault probes' module (tests/run/harness.py), for ``PYTHONPATH``."""
    folder = tmp_path_factory.mktemp("probes")
    (folder / f"{PROBES_MODULE}.py").write_text(PROBES_SOURCE)
    return folder
