"""ablate: a benchmark and ablation suite for deep learning on PyTorch Lightning and Hydra."""

import hashlib

from omegaconf import OmegaConf

__version__ = "0.1.0"


def job_id(override_dirname: str) -> str:
    """A sweep job's folder name: a short hash of its own overrides (Hydra's sorted override_dirname),
    so the same job finds the same folder however the sweep is ordered or relaunched."""
    return hashlib.sha1(str(override_dirname).encode()).hexdigest()[:12]


# Registered on import: the sweep folder layout (conf/config.yaml) needs it in every process,
# joblib and submitit workers included, and they all import ablate to run a job.
if not OmegaConf.has_resolver("ablate_job_id"):
    OmegaConf.register_new_resolver("ablate_job_id", job_id)
