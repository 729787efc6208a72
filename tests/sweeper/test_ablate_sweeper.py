"""hydra_plugins.ablate_sweeper: Hydra's grid sweep without a claim, sequential seeds with one: only
the cells of an undecided check get more seeds, and a killed sweep relaunched finishes the same
looks without redoing a run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from hydra.core.override_parser.overrides_parser import OverridesParser

from hydra_plugins.ablate_sweeper.ablate_sweeper import batches, expand, job_dict, look_jobs, seed_swept, union
from tests.support import PYTHON


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "PYTHONUNBUFFERED": "1"}


@pytest.mark.parametrize("overrides", [
    ["seed=0,1", "model.depth=2,4"],
    ["model.depth=2,8,32", "model.residual=true,false", "+experiment=residual_depth", "budget=smoke"],
    ["a=1,2", "b=x", "a=3,4,5"],               # the command line (later) wins, in the first key's place
    ["a=range(1,4)", "~b", "+c=choice(u,v)"],
])
def test_the_grid_is_the_basic_sweepers(overrides):
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper  # the reference, in the test only

    parsed = OverridesParser.create().parse_overrides(overrides)
    assert expand(parsed) == BasicSweeper.split_arguments(parsed, max_batch_size=None)[0]


def test_jobs_of_a_look_and_their_batches():
    cells = [["a=1", "b=x"], ["a=2", "b=x"]]
    jobs = look_jobs(cells, [[0, 1], [2]])
    assert jobs == [["a=1", "b=x", "seed=0"], ["a=1", "b=x", "seed=1"], ["a=2", "b=x", "seed=2"]]
    assert look_jobs(cells, [[0, 1], [2]], ["seeds", "seeds"]) == [["a=1", "b=x", "seeds=[0,1]"],
                                                                   ["a=2", "b=x", "seed=2"]]
    assert batches(jobs, None) == [jobs] and batches(jobs, 2) == [jobs[:2], jobs[2:]] and batches([], 3) == []
    assert job_dict(["+experiment=x", "~model.dropout", "seed=3"]) == {"experiment": "x", "model.dropout": None,
                                                                       "seed": "3"}
    assert seed_swept([["seed=0", "a=1"]]) and not seed_swept([["a=1"]])


def test_cells_that_differ_only_in_the_learning_rate_share_a_job_when_their_seeds_agree():
    cells = [["opt=adam", "optimizer.lr=0.001"], ["opt=adam", "optimizer.lr=0.01"], ["opt=sgd", "optimizer.lr=0.1"],
             ["opt=adam", "optimizer.lr=0.1"], ["opt=rnn", "optimizer.lr=0.1"]]
    jobs = look_jobs(cells, [[0, 1], [0, 1], [0, 1], [3], [0, 1]], ["lrs", "lrs", "lrs", "lrs", None])
    assert jobs == [["opt=adam", "lrs=[0.001,0.01]", "seeds=[0,1]"],
                    ["opt=sgd", "optimizer.lr=0.1", "seeds=[0,1]"],
                    ["opt=adam", "optimizer.lr=0.1", "seed=3"],          # other seeds: a job of its own
                    ["opt=rnn", "optimizer.lr=0.1", "seed=0"], ["opt=rnn", "optimizer.lr=0.1", "seed=1"]]


def test_a_union_of_grids_runs_each_grid_in_order_and_a_shared_job_once():
    parser = OverridesParser.create()
    base, cli = ["norm=none,batch"], ["seed=0"]
    jobs = union([[*base, "data.batch_size=2", "optimizer.lr=0.001,0.002", *cli],
                  [*base, "data.batch_size=32", "optimizer.lr=0.016,0.032", *cli],
                  [*base, "data.batch_size=2", "optimizer.lr=0.002", *cli]], parser)   # all seen before
    assert jobs == [[f"norm={n}", f"data.batch_size={b}", f"optimizer.lr={lr}", "seed=0"]
                    for b, lrs in ((2, ("0.001", "0.002")), (32, ("0.016", "0.032"))) for n in ("none", "batch")
                    for lr in lrs]
    plain = [["seed=0,1", "model.depth=2,4"]]                      # no grids: the basic sweeper's product
    assert union(plain, parser) == expand(parser.parse_overrides(plain[0]))
    assert len(union(plain, parser)) == 4


def _sweep(tmp_path: Path, *args: str, name: str = "sweep") -> tuple[subprocess.CompletedProcess, Path]:
    sweep = tmp_path / name
    proc = subprocess.run([PYTHON, "-m", "ablate", *args, "budget=smoke", "threads=1", f"hydra.sweep.dir={sweep}"],
                          cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    return proc, sweep


def _launched(proc: subprocess.CompletedProcess) -> list[str]:
    return [line.split(" : ", 1)[1].strip() for line in (proc.stdout + proc.stderr).splitlines() if "\t#" in line]


def _runs(jobs: list[str]) -> int:
    """How many runs the launched jobs make (a ``seeds=[a,b]`` job makes one per seed)."""
    return sum(job.split("seeds=[", 1)[1].split("]", 1)[0].count(",") + 1 if "seeds=[" in job else 1 for job in jobs)


@pytest.mark.slow
def test_without_a_claim_it_runs_like_the_basic_sweeper(tmp_path):
    args = ["-m", "seed=0,1", "model.depth=1,2", "trainer.max_epochs=1", "report=false"]
    ours, ours_dir = _sweep(tmp_path, *args, name="ours")
    basic, basic_dir = _sweep(tmp_path, *args, "hydra/sweeper=basic", name="basic")
    assert ours.returncode == 0 and basic.returncode == 0, ours.stderr[-2000:] + basic.stderr[-2000:]
    assert _launched(ours) == [j.replace(" hydra/sweeper=basic", "") for j in _launched(basic)]
    assert sorted(p.name for p in ours_dir.iterdir()) == sorted(p.name for p in basic_dir.iterdir())


# A tiny experiment: the first check is decided by the first look (sigmoid's first-layer gradient
# vanishes by orders of magnitude), the second never (checkpointing changes no number), so only the
# two cells the second reads get the next looks' seeds.
TINY = """# @package _global_
defaults:
  - override /probes: gradients
experiment: tiny
model: {depth: 12, width: 16}
trainer: {max_epochs: 1}
hydra:
  mode: MULTIRUN
  sweeper:
    params:
      activation: relu,sigmoid
      checkpoint: true,false
claim:
  name: tiny
  statement: ReLU keeps gradients flowing where sigmoid does not; checkpointing changes nothing.
  clauses:
    - {name: relu, text: ReLU keeps gradients flowing}
    - {name: checkpoint, text: checkpointing changes nothing}
  checks:
    - {name: decided, clause: relu, metric: grad/first_layer, transform: log10, goal: max,
       factor: activation, treatment: relu, baseline: sigmoid, where: {checkpoint: true}}
    - {name: open, clause: checkpoint, metric: train/loss, goal: min, factor: checkpoint,
       treatment: true, baseline: false, where: {activation: relu}}
"""


def _tiny(tmp_path: Path, folder: str = "conf", text: str = TINY) -> list[str]:
    conf = tmp_path / folder / "experiment"
    conf.mkdir(parents=True)
    (conf / "tiny.yaml").write_text(text)
    return [f"hydra.searchpath=[file://{tmp_path / folder}]", "+experiment=tiny"]


def _records(sweep: Path) -> dict[tuple, dict]:
    out = {}
    for path in sweep.rglob("record.json"):
        r = json.loads(path.read_text())
        out[(r["overrides"]["activation"], r["overrides"]["checkpoint"].lower(), r["seed"])] = r  # True: Hydra's text
    return out


@pytest.mark.slow
def test_only_the_cells_of_the_undecided_check_get_more_seeds(tmp_path):
    proc, sweep = _sweep(tmp_path, *_tiny(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    records = _records(sweep)
    assert all(r["status"] == "ok" for r in records.values())
    first = {(a, c, s) for a in ("relu", "sigmoid") for c in ("true", "false") for s in (0, 1)}
    assert first <= set(records)
    assert set(records) - first == {("relu", "true", 2), ("relu", "false", 2)}, sorted(records)
    text = (sweep / "report.md").read_text()
    assert "decided at look 1" in text and "undecided after 2 of 2 planned look(s)" in text
    assert "2 seeds per cell, up to 3 in looks 2 → 3" in text
    launched = _launched(proc)      # an MLP vectorizes: the first look is one job per cell
    assert sum("seeds=[0,1]" in job for job in launched) == 4 and _runs(launched) == 10, launched

    # seed by seed (the same command line, vectorize=false in the experiment), the runs land in the
    # same folders, with the same verdicts
    seed_by_seed = TINY.replace("experiment: tiny\n", "experiment: tiny\nvectorize: false\n")
    plain, plain_sweep = _sweep(tmp_path, *_tiny(tmp_path, "plain-conf", seed_by_seed), name="plain")
    assert plain.returncode == 0, plain.stderr[-3000:]
    assert not any("seeds=" in job for job in _launched(plain))
    folders = lambda root: sorted(p.parent.name for p in root.rglob("record.json"))   # noqa: E731
    assert folders(sweep) == folders(plain_sweep)
    verdicts = lambda root: [line for line in (root / "report.md").read_text().splitlines()   # noqa: E731
                             if line.startswith("**")]
    assert verdicts(sweep) == verdicts(plain_sweep)


@pytest.mark.slow
def test_a_killed_sequential_sweep_finishes_the_same_looks_without_redoing_a_run(tmp_path):
    args = [PYTHON, "-m", "ablate", *_tiny(tmp_path), "budget=smoke", "budget.max_seeds=5", "threads=1",
            f"hydra.sweep.dir={tmp_path / 'sweep'}"]
    sweep = tmp_path / "sweep"
    proc = subprocess.Popen(args, cwd=tmp_path, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    try:  # kill it inside look 2 (the first look beyond the budget's 2 seeds has 1 more seed a cell)
        while len(list(sweep.rglob("record.json"))) < 10 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    before = _records(sweep)
    assert 10 <= len(before) < 14, f"killed too late: {len(before)} records"

    again = subprocess.run(args, cwd=tmp_path, env=_env(), capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    after = _records(sweep)
    # looks 2 -> 3 -> 5 for the open check's two cells: 8 + 2 + 4 runs, as uninterrupted
    extra = {("relu", c, s) for c in ("true", "false") for s in (2, 3, 4)}
    assert set(after) == {(a, c, s) for a in ("relu", "sigmoid") for c in ("true", "false") for s in (0, 1)} | extra
    for key, record in before.items():  # nothing that had finished ran again
        assert after[key]["started_at"] == record["started_at"] and after[key]["finished_at"] == record["finished_at"]
    launched = _launched(again)
    assert _runs(launched) == 14 - len(before), launched
    assert not any("seed=0" in job or "seed=1" in job or "seeds=[0" in job for job in launched)


def test_an_open_check_decided_on_a_hair_says_why_it_goes_on():
    from types import SimpleNamespace

    from hydra_plugins.ablate_sweeper.ablate_sweeper import _open_text

    spec = SimpleNamespace(name="deep beats shallow")
    hair = SimpleNamespace(spec=spec, decided=True, borderline=True, verdict="supported", room=0.12, one_seed_out=False)
    assert _open_text(hair) == ("deep beats shallow (borderline supported: 0.12 half-widths of room, undone by leaving "
                                "out one seed; the next look decides)")
    undecided = SimpleNamespace(spec=spec, decided=False, borderline=False, verdict="inconclusive", room=float("nan"),
                                one_seed_out=None)
    assert _open_text(undecided) == "deep beats shallow"
