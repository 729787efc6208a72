"""Shared fixtures. Configs are composed in-process with Hydra's compose API (no subprocess, no
Hydra app), so ``run_dir`` - ``${hydra:runtime.output_dir}`` in conf/config.yaml - is always
overridden with a temporary folder."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

# The models under test are tiny: one intra-op thread is faster than OpenMP's two, and on a busy
# 2-core machine two spinning OpenMP threads make every op ~100x slower.
torch.set_num_threads(1)

# Generated data sets (MNIST-1D) are cached on disk for the session, in a folder of its own: the
# subprocess tests read them instead of generating them again, and the user's cache stays untouched.
_CACHE = tempfile.mkdtemp(prefix="ablate-test-cache-")
os.environ.setdefault("ABLATE_CACHE_DIR", _CACHE)

from tests.support import CATALOGUED, compose, run_ablate


def pytest_sessionfinish(session, exitstatus):
    shutil.rmtree(_CACHE, ignore_errors=True)


def pytest_configure(config):
    # Lightning 2.6 on torch 2.13 warns on every fit (ablate.run filters it too, but pytest resets filters)
    config.addinivalue_line("filterwarnings", "ignore:.*LeafSpec.*is deprecated:FutureWarning")


@pytest.fixture
def compose_cfg(tmp_path):
    """``compose_cfg(overrides, run_dir=None)``: a composed config whose run_dir is ``tmp_path/run``
    unless given."""

    def _compose(overrides=(), run_dir: str | Path | None = None):
        return compose(overrides, run_dir if run_dir is not None else tmp_path / "run")

    return _compose


@pytest.fixture(scope="session")
def smoke_catalogue(tmp_path_factory):
    """``python -m ablate.catalogue --only <CATALOGUED> budget=smoke``, run once a session: ``.dir`` (the
    catalogue folder: index.md/.html, a sweep folder per experiment), ``.names``, ``.first`` (the run,
    output captured) and ``.args`` (its arguments, to relaunch it). tests/test_catalogue.py checks the
    index and the resume; tests/test_experiments.py the experiments' sweeps."""
    from types import SimpleNamespace

    out = tmp_path_factory.mktemp("catalogue") / "catalogue"
    args = ["budget=smoke", "threads=1", "--only", ",".join(CATALOGUED), "--dir", str(out)]
    first = run_ablate(args, cwd=out.parent, module="ablate.catalogue", timeout=1800)
    return SimpleNamespace(dir=out, names=CATALOGUED, args=args, first=first)
