"""Helpers shared by the test modules (``from tests.support import compose, group, PYTHON, REPO``).
Fixtures live in ``tests/conftest.py``."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def compose(overrides=(), run_dir: str | Path = ".") -> "DictConfig":  # noqa: F821
    """The primary config (pkg://ablate.conf) with ``overrides`` and ``run_dir`` set."""
    from hydra import compose as hydra_compose, initialize_config_module

    with initialize_config_module("ablate.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[*overrides, f"run_dir={run_dir}"])


@functools.lru_cache(maxsize=None)
def group(name: str, choice: str) -> "DictConfig":  # noqa: F821
    """The node ``conf/<name>/<choice>.yaml`` composes to (``group("optimizer", "adam")``), composed once."""
    return compose([f"{name}={choice}"])[name]


def choices(name: str) -> tuple[str, ...]:
    """The shipped choices of a config group (``choices("scheduler")``: none, step, cosine, ...)."""
    return tuple(sorted(p.stem for p in (REPO / "conf" / name).glob("*.yaml")))
