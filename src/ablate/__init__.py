"""ablate: a benchmark and ablation suite for deep learning on PyTorch Lightning and Hydra."""

import hashlib

from omegaconf import OmegaConf

__version__ = "0.1.0"


def job_id(override_dirname: str) -> str:
    """A sweep job's folder name: a short hash of its own overrides (Hydra's sorted override_dirname),
    so the same job finds the same folder however the sweep is ordered or relaunched."""
    return hashlib.sha1(str(override_dirname).encode()).hexdigest()[:12]


def scale(value: float, factor: float) -> int:
    """``${scale:${budget.max_epochs},0.5}``: an experiment's share of the budget, at least 1, so
    the same experiment stays proportionate under budget=smoke, quick and full."""
    return max(1, round(float(value) * float(factor)))


# Registered on import: the sweep folder layout (conf/config.yaml) needs it in every process,
# joblib and submitit workers included, and they all import ablate to run a job.
for _name, _fn in (("ablate_job_id", job_id), ("scale", scale)):
    if not OmegaConf.has_resolver(_name):
        OmegaConf.register_new_resolver(_name, _fn)
