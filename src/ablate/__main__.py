"""`python -m ablate [overrides]` and the `ablate` console script: compose, then run one trial (or a
sweep with -m / +experiment=...)."""

import signal
import sys

import hydra
from omegaconf import DictConfig

import ablate  # noqa: F401  (registers the config resolvers)


def _stop_on_sigterm(signum, frame):
    # Lightning installs its own SIGTERM handler that lets a fit end quietly (exit 0) or even lets
    # the test phase finish and record the run as ok; it calls ours after its own. Exiting with
    # 128+15 keeps the killed run unrecorded, so a relaunch of the sweep resumes it.
    print("ablate: terminated (SIGTERM); relaunch the same command to resume", file=sys.stderr)
    raise SystemExit(128 + signum)


@hydra.main(version_base="1.3", config_path="pkg://ablate.conf", config_name="config")
def main(cfg: DictConfig) -> float:
    from ablate.run import run_trial  # imported here so `--help` and config errors stay fast

    signal.signal(signal.SIGTERM, _stop_on_sigterm)
    return run_trial(cfg)


if __name__ == "__main__":
    main()
