"""Where a run comes from, for its record: the versions and git commit it ran with, the job's own
overrides and the config group choices Hydra made (empty outside a Hydra app)."""

from __future__ import annotations

import functools
import platform
import subprocess
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig

import ablate
from ablate.members import MEMBER_KEYS, Member


@functools.lru_cache(maxsize=1)
def versions() -> dict[str, Any]:
    import lightning as L
    import torch

    try:
        git = subprocess.run(["git", "rev-parse", "--verify", "-q", "HEAD"], cwd=Path(__file__).parent,
                             capture_output=True, text=True, timeout=5)
        commit = git.stdout.strip() if git.returncode == 0 else None
    except (OSError, subprocess.SubprocessError):
        commit = None
    return {"python": platform.python_version(), "torch": torch.__version__, "lightning": L.__version__,
            "ablate": ablate.__version__, "git_commit": commit}


def job_overrides() -> dict[str, str]:
    """This job's own command-line and sweep overrides, ``key -> value`` (empty outside a Hydra app)."""
    if not HydraConfig.initialized():
        return {}
    out = {}
    for override in HydraConfig.get().overrides.task:
        key, _, value = override.partition("=")
        out[key.lstrip("+~")] = value if value or not key.startswith("~") else None  # ~key deletes it
    return out


def member_overrides(member: Member) -> dict[str, str]:
    """The overrides the one-run job of ``member`` would have: the job's, its member keys replaced."""
    own = member.overrides()
    overrides = {k: v for k, v in job_overrides().items() if k not in (*MEMBER_KEYS, *own)}
    return {**overrides, **own}


def group_choices() -> dict[str, str]:
    """Which file of each config group this run used (``{"model": "resnet", "optimizer": "adam"}``)."""
    if not HydraConfig.initialized():
        return {}
    return {k: str(v) for k, v in HydraConfig.get().runtime.choices.items() if not k.startswith("hydra/")}


def multirun() -> bool:
    """Whether this process runs a job of a sweep (``-m``)."""
    return HydraConfig.initialized() and str(HydraConfig.get().mode) == "RunMode.MULTIRUN"
