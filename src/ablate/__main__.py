"""`python -m ablate [overrides]` and the `ablate` console script: compose, then run one trial (or a
sweep with -m / +experiment=...)."""

import hydra
from omegaconf import DictConfig

import ablate  # noqa: F401  (registers the config resolvers)


@hydra.main(version_base="1.3", config_path="pkg://ablate.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from ablate.run import run_trial  # imported here so `--help` and config errors stay fast

    return run_trial(cfg)


if __name__ == "__main__":
    main()
