"""What the tests of ``ablate.run`` share (``from tests.run.harness import ...``): the fault probes,
the ``python -m ablate`` subprocess with them on its path, in-process references, and reading a
sweep's folders and records.

Faults are injected without touching ``src/``: a small module of Lightning callbacks (written to a
temp folder, the ``probes_dir`` fixture of tests/run/conftest.py, and put on ``PYTHONPATH``) is added
as an extra probe, ``+probes.fault._target_=...``. ``Signal`` kills this process (SIGKILL/SIGTERM, or
an exception) at a chosen hook, once (only while the file named by ``$ABLATE_FAULT_TRIGGER`` exists;
it is deleted first, so the relaunch of the same command runs clean); ``Boom`` raises for one seed.
The references they are compared with carry the same probe (inert without the trigger), so configs
and job folders are the same.

Subprocesses and the in-process references both run torch on one thread (``OMP_NUM_THREADS=1`` in
:func:`tests.support.subprocess_env`, ``torch.set_num_threads(1)`` in conftest), so metrics are
compared for exact equality.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import yaml

from ablate.results import RECORD_NAME, read_record, validate_record
from ablate.run import run_trial
from tests.support import PYTHON, compose, run_ablate, subprocess_env

PROBES_MODULE = "ablate_test_probes"
PROBES_SOURCE = '''
"""Test probes for tests/run (Lightning callbacks used as extra ablate probes)."""
import os
import signal

import lightning as L


class _Probe(L.Callback):
    def epoch_metrics(self):       # ablate's History asks every probe for its epoch scalars
        return {}


class Signal(_Probe):
    """Send ``sig`` to this process (``sig="exception"``: raise RuntimeError instead) at ``hook``
    (train_epoch_start | test_start), at epoch ``epoch`` (None: any) of the job whose ``seed`` is
    ``at_seed`` (None: any), once: only while the file named by $ABLATE_FAULT_TRIGGER exists, and it
    is deleted first."""

    def __init__(self, sig="SIGKILL", hook="train_epoch_start", epoch=None, at_seed=None, seed=None):
        self.sig, self.hook, self.epoch, self.at_seed, self.seed = sig, hook, epoch, at_seed, seed

    def _fire(self, trainer, hook):
        trigger = os.environ.get("ABLATE_FAULT_TRIGGER")
        if (hook == self.hook and (self.epoch is None or trainer.current_epoch == self.epoch)
                and (self.at_seed is None or self.seed == self.at_seed) and trigger and os.path.exists(trigger)):
            os.unlink(trigger)
            if self.sig == "exception":
                raise RuntimeError(f"killed mid-run at epoch {trainer.current_epoch}")
            os.kill(os.getpid(), getattr(signal, self.sig))

    def on_train_epoch_start(self, trainer, pl_module):
        self._fire(trainer, "train_epoch_start")

    def on_test_start(self, trainer, pl_module):
        self._fire(trainer, "test_start")


class Boom(_Probe):
    """Raise at the start of epoch ``epoch`` of the job whose ``seed`` is ``at_seed``."""

    def __init__(self, seed, at_seed=1, epoch=0):
        self.seed, self.at_seed, self.epoch = seed, at_seed, epoch

    def on_train_epoch_start(self, trainer, pl_module):
        if self.seed == self.at_seed and trainer.current_epoch == self.epoch:
            raise RuntimeError(f"injected fault: boom at epoch {self.epoch} (seed={self.seed})")
'''

TIMEOUT_S = 600          # one subprocess; generous: the machine is shared and has 2 cores
EXACT_KEYS = ("status", "error", "seed", "epochs_completed", "params", "history", "metrics")
# A few epochs of the smoke budget, with the gradient probes (their summaries are compared too)
SMALL = ["budget=smoke", "trainer.max_epochs=3", "logger=none", "probes=gradients"]


def fault_env(probes_dir: Path, trigger: Path | None = None) -> dict[str, str]:
    """:func:`tests.support.subprocess_env` with the fault probes importable and, given ``trigger``,
    armed."""
    path = os.pathsep.join(p for p in (str(probes_dir), os.environ.get("PYTHONPATH")) if p)
    return subprocess_env(PYTHONPATH=path, ABLATE_FAULT_TRIGGER=str(trigger) if trigger is not None else "")


def run_cli(args, cwd: Path, env: dict, timeout: int = TIMEOUT_S) -> subprocess.CompletedProcess:
    """``python -m ablate *args``; its ``stdout`` holds stdout and stderr (the log, Hydra's lines and
    ablate's messages), in that order."""
    result = run_ablate(args, cwd, env=env, timeout=timeout)
    result.stdout += result.stderr
    return result


def popen(args, cwd: Path, env: dict, log: Path) -> subprocess.Popen:
    """``python -m ablate *args`` in the background (its own process group), output to ``log``."""
    return subprocess.Popen([PYTHON, "-m", "ablate", *args], cwd=cwd, env=env, stdout=open(log, "w"),
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def signal_probe(sig: str, hook: str, epoch: int | None = None, at_seed: int | None = None) -> list[str]:
    args = [f"+probes.fault._target_={PROBES_MODULE}.Signal", f"+probes.fault.sig={sig}",
            f"+probes.fault.hook={hook}"]
    if epoch is not None:
        args.append(f"+probes.fault.epoch={epoch}")
    if at_seed is not None:
        args += [f"+probes.fault.at_seed={at_seed}", "+probes.fault.seed=${seed}"]
    return args


def reference_record(overrides: list[str], run_dir: Path, probes_dir: Path) -> dict:
    """The same trial, uninterrupted, in this process; its record (a one-run job's)."""
    sys.path.insert(0, str(probes_dir))
    try:
        run_trial(compose(overrides, run_dir))
    finally:
        sys.path.remove(str(probes_dir))
    return validate_record(read_record(run_dir))


def assert_same_results(got: dict, want: dict, what: str = "") -> None:
    for key in EXACT_KEYS:
        assert got[key] == want[key], f"{what}: {key} differs:\n{got[key]}\n!=\n{want[key]}"


def job_folders(sweep: Path) -> dict[str, Path]:
    """Job folders of a sweep (they hold .hydra/), by name."""
    return {p.name: p for p in sweep.iterdir() if (p / ".hydra").is_dir()} if sweep.exists() else {}


def job_overrides(folder: Path) -> list[str]:
    """The task overrides Hydra ran the job in ``folder`` with."""
    return yaml.safe_load((folder / ".hydra" / "overrides.yaml").read_text())


def seed_of(folder: Path) -> int:
    return int(next(o.split("=", 1)[1] for o in job_overrides(folder) if o.startswith("seed=")))


def run_folders(sweep: Path) -> dict[str, Path]:
    """The folders that hold a run's record, by name: a seed=k job's folder, or a member's of a
    seeds=[...] job (the job's own folder holds .hydra/ and, while it trains, its checkpoint)."""
    return {p.parent.name: p.parent for p in sweep.glob(f"*/{RECORD_NAME}")} if sweep.exists() else {}


def sweep_records(sweep: Path) -> dict[str, dict]:
    """run_id -> record, checking there is exactly one record.json per run folder (and none elsewhere)."""
    out = {}
    for name, folder in run_folders(sweep).items():
        found = list(folder.rglob(RECORD_NAME))
        assert found == [folder / RECORD_NAME], f"{name}: {found}"
        out[name] = validate_record(read_record(folder))
        assert out[name]["run_id"] == name
    assert len(list(sweep.rglob(RECORD_NAME))) == len(out)
    return out


def temp_files(folder: Path) -> list[Path]:
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")]


def wait_for(condition, timeout: float, proc: subprocess.Popen | None = None, interval: float = 0.05) -> bool:
    """Poll ``condition`` until it holds (True), the deadline passes or ``proc`` ends (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        if proc is not None and proc.poll() is not None:
            return condition()
        time.sleep(interval)
    return False
