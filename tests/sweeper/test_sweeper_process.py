"""The process that launches a sweep never imports torch or Lightning before its first job: the ablate
sweeper composes the experiment's jobs, checks every one (:func:`ablate.hydra_callbacks.check_job`),
asks how each cell packs into jobs (``packing()``: :func:`ablate.members.vectorize_refusal`) and reads
the sweep's records (:func:`ablate.results.load_records`) from the config alone. With a parallel
launcher (joblib, submitit) that process never trains, and importing torch there (~3 s) would only
delay the sweep.

The real command runs (``python -m ablate +experiment=... -m``) with one more Hydra callback, a spy
that, when the first job starts (the basic launcher starts it in the sweeper's own process), writes
down which modules that process has imported and ends it: nothing trains."""

from __future__ import annotations

import json
import os

import pytest

from tests.support import run_ablate, subprocess_env

SPY_MODULE = "ablate_test_import_spy"
SPY_SOURCE = '''
"""A Hydra callback for tests/sweeper/test_sweeper_process.py."""
import json
import os
import sys

from hydra.experimental.callback import Callback


class ImportSpy(Callback):
    def __init__(self, out):
        self.out = out

    def on_multirun_start(self, config, **kwargs):
        self.sweeper_pid = os.getpid()

    def on_job_start(self, config, **kwargs):
        seen = {"same_process": os.getpid() == self.sweeper_pid, "job": list(config.hydra.overrides.task),
                **{name: name in sys.modules for name in ("torch", "lightning", "ablate.run", "ablate.members")}}
        with open(self.out, "w") as f:
            json.dump(seen, f)
        os._exit(0)      # what the sweeper did before its first job is all this test wants
'''


@pytest.mark.parametrize("experiment,packed", [("residual_depth", "seeds=["), ("rnn_vs_lstm", "seed=")],
                         ids=["vectorized", "not-vectorizable"])
def test_the_sweeper_process_imports_no_torch_before_its_first_job(tmp_path, experiment, packed):
    (tmp_path / f"{SPY_MODULE}.py").write_text(SPY_SOURCE)
    out = tmp_path / "imports.json"
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    result = run_ablate([f"+experiment={experiment}", "budget=smoke", f"hydra.sweep.dir={tmp_path / 'sweep'}",
                         f"+hydra.callbacks.spy._target_={SPY_MODULE}.ImportSpy", f"+hydra.callbacks.spy.out={out}"],
                        tmp_path, env=subprocess_env(PYTHONPATH=path), timeout=300)
    assert result.returncode == 0 and out.exists(), (result.stdout + result.stderr)[-3000:]
    seen = json.loads(out.read_text())
    assert seen["same_process"], "the first job did not start in the sweeper's process"
    # the sweeper asked how to pack the cells: residual_depth's seeds are one vectorized job, the RNN's are not
    assert any(o.startswith(packed) for o in seen["job"]), seen["job"]
    assert seen["ablate.members"], "the sweeper never asked whether its cells can be vectorized"
    assert not seen["torch"] and not seen["lightning"] and not seen["ablate.run"], seen
