"""``python -m ablate.bench`` (output format only: no timing assertions): the fit-time ratio against
a hand-written loop, the lockstep method, the vectorized-seeds speed-up."""

from __future__ import annotations

import re

import pytest

from ablate.bench import main, run_lockstep, run_raw
from ablate.results import read_record

RATIO = re.compile(r"^ablate/raw fit-time ratio: \d+\.\d\d$")


@pytest.mark.parametrize("method", [["--floor"], ["--whole-runs"]], ids=["lockstep+floor", "whole-runs"])
def test_bench_prints_its_ratio_last(capsys, method):
    ratio = main(["--epochs", "2", "--repeats", "1", "--samples", "400", *method])
    lines = capsys.readouterr().out.strip().splitlines()
    assert RATIO.match(lines[-1]), lines[-1]
    assert float(lines[-1].rsplit(" ", 1)[1]) == pytest.approx(ratio, abs=0.005)
    rows = {line.split(":", 1)[0].strip(): line for line in lines if line.startswith(("ablate:", "raw   :"))}
    assert set(rows) == {"ablate", "raw"}
    for row in rows.values():
        assert re.search(r"ms/step .* samples/s\); \d+ steps", row), row
    # same model, same batches: both contenders end at the same training loss
    losses = {name: re.search(r"final train/loss (\S+),", row).group(1) for name, row in rows.items()}
    assert losses["ablate"] == losses["raw"]
    repeat = re.search(r"repeat 1/1: ablate (\S+) s, raw (\S+) s", "\n".join(lines))
    assert 0 < float(repeat.group(1)) and 0 < float(repeat.group(2))
    if "--floor" in method:
        floor = re.search(r"^Lightning's floor: .*: (\d+\.\d\d) \(median of 1", "\n".join(lines), re.MULTILINE)
        assert floor and float(floor.group(1)) > 0


def test_lockstep_runs_both_contenders_epoch_by_epoch(compose_cfg, tmp_path):
    """The raw loop's epochs run inside ablate's fit, one before each of ablate's epochs, and their time
    is taken out of ablate's: both end where they would have run alone."""
    overrides = ["budget=smoke", "trainer.max_epochs=3"]
    alone = run_raw(compose_cfg(overrides, tmp_path / "alone"))
    ablate, raw = run_lockstep(compose_cfg(overrides, tmp_path / "ablate"), compose_cfg(overrides, tmp_path / "raw"))
    assert raw["steps"] == ablate["steps"] == alone["steps"] == 3 * 4         # 420 training rows: 4 batches of 128
    assert raw["train_loss"] == alone["train_loss"] == pytest.approx(ablate["train_loss"], abs=1e-6)
    assert len((tmp_path / "raw" / "metrics.csv").read_text().splitlines()) == 1 + 3
    assert raw["interleaved_epochs"] == [0, 1, 2]                  # one raw epoch before each of ablate's
    assert 0 < ablate["fit_s"] and 0 < raw["fit_s"]
    assert read_record(tmp_path / "ablate")["status"] == "ok"


@pytest.mark.slow
def test_bench_sweep_prints_the_speed_up(capsys):
    main(["--epochs", "1", "--repeats", "1", "--samples", "300", "--sweep", "--sweep-skip-default-threads",
          "--sweep-grid", "seed=0,1", "budget=smoke"])
    out = capsys.readouterr().out
    assert re.search(r"^joblib/basic sweep speed-up: \d+\.\d\d ", out, re.MULTILINE), out
    assert "basic-1-thread: " in out and "joblib: " in out and "2 records" in out
    assert RATIO.match(out.strip().splitlines()[-1])


@pytest.mark.slow
def test_seeds_bench_prints_the_vectorized_speed_up_last(capsys):
    speedup = main(["--seeds", "2", "--epochs", "1", "--repeats", "1", "--samples", "400"])
    lines = capsys.readouterr().out.strip().splitlines()
    assert re.match(r"^vectorized speed-up for 2 seeds: \d+\.\d\d$", lines[-1]), lines[-1]
    assert float(lines[-1].rsplit(" ", 1)[1]) == pytest.approx(speedup, abs=0.005)
    assert any(re.match(r"^separate  : .* ms per member-step", line) for line in lines)
    assert any(re.match(r"^vectorized: .* ms per member-step", line) for line in lines)


def test_busy_core_spins_for_the_block_and_always_stops():
    from ablate.bench.common import busy_core

    with busy_core(60) as proc:
        assert proc.poll() is None                              # spinning while the block runs
    assert proc.poll() is not None
    with pytest.raises(ZeroDivisionError), busy_core(60) as proc:
        1 / 0
    assert proc.poll() is not None                              # stopped when the block fails too
    with busy_core(0.2) as proc:
        assert proc.wait(timeout=30) == 0                       # bounded in time on its own


@pytest.mark.skipif(__import__("torch").cuda.is_available(), reason="a CUDA device is here: the parts would run")
def test_gpu_bench_reports_every_part_skipped_without_cuda(capsys):
    from ablate.bench.gpu import PARTS

    assert main(["--gpu"]) == 0                                 # no part failed
    lines = capsys.readouterr().out.strip().splitlines()
    skipped = [line for line in lines if "SKIPPED (" in line]
    assert len(skipped) == len(PARTS) == 5
    for line, (title, _, _) in zip(skipped, PARTS):
        assert f": {title}: SKIPPED (no CUDA device" in line, line
    assert lines[-1] == "gpu: 0 parts measured, 5 skipped, 0 failed"


@pytest.mark.slow
def test_gpu_bench_vectorized_part_measures_on_cpu(capsys, tmp_path):
    """The GPU bench's first part run for real here on the CPU trainer (``--gpu-trainer cpu``): one row
    for the seeds one by one and one per K, with member-steps per second in all and after the first epoch."""
    import argparse

    from ablate.bench.gpu import vectorized_part

    args = argparse.Namespace(seeds_model="mlp", gpu_separate=2, gpu_k=[2, 3], gpu_trainer="cpu", gpu_budget="smoke",
                              gpu_timeout=300)
    vectorized_part(args, tmp_path)
    out = capsys.readouterr().out
    assert re.search(r"^  2 one by one +\| [\d,]+ +\| [\d,]+ +\| 1\.00 +\| n/a", out, re.MULTILINE), out
    for k in (2, 3):
        assert re.search(rf"^  K={k} vectorized +\| [\d,]+ +\| [\d,]+ +\| \d+\.\d\d ", out, re.MULTILINE), out
        assert len(list((tmp_path / f"vectorized-{k}").rglob("record.json"))) == k


@pytest.mark.slow
def test_load_bench_prints_idle_and_busy_side_by_side(capsys):
    from ablate.bench.load import LOAD_LINE

    ratio = main(["--load", "--load-args", "budget=smoke", "trainer.max_epochs=1", "budget.num_samples=300",
                  "--load-threads", "1", "2"])
    lines = capsys.readouterr().out.strip().splitlines()
    pattern = re.escape(LOAD_LINE).replace(r"\{:\.2f\}", r"(\d+\.\d\d)")
    last = re.match(pattern, lines[-1])
    assert last and float(last.group(1)) == pytest.approx(ratio, abs=0.005), lines[-1]
    rows = {line.split("|")[0].strip(): [c.strip() for c in line.split("|")] for line in lines if "|" in line}
    assert {"default", "threads=1", "threads=2"} <= set(rows)
    assert rows["default"][1] == "1" and rows["threads=2"][1] == "2"     # the policy's one thread, recorded
    for name in ("default", "threads=1", "threads=2"):
        assert rows[name][-1] == "1 of 1"                          # a busy core does not change the numbers
    assert sum(", loaded: " in line for line in lines) == 3


@pytest.mark.slow
def test_catalogue_bench_times_one_job_against_the_default_with_the_same_verdicts(capsys):
    from ablate.bench.catalogue import CATALOGUE_LINE

    speedup = main(["--catalogue", "--budget", "smoke", "--only", "linear_collapse"])
    out = capsys.readouterr().out
    assert re.search(r"^same verdicts: yes \(\d+ claims\); identical final metrics \(timings left out\) in (\d+) of \1 "
                     r"records", out,
                     re.MULTILINE), out
    assert re.search(r"--jobs 1 +\| 1 × 1 ", out) and re.search(r"default +\| 1 × 1 ", out), out   # one experiment
    assert out.strip().splitlines()[-1] == CATALOGUE_LINE.format(speedup)


def test_phases_prints_each_phase_of_a_run(tmp_path):
    """``python -m ablate.bench.phases``: a table of the command's phases (calls, CPU s, share, wall s)."""
    from tests.support import run_ablate

    result = run_ablate(["budget=smoke", "budget.max_epochs=1", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path,
                        module="ablate.bench.phases", timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    rows = {re.split(r"\s{2,}", line.strip())[0]: line.split() for line in result.stdout.splitlines()
            if line.startswith("  ")}
    assert {"imports (interpreter, torch, Lightning, ablate)", "whole process"} <= set(rows)
    for phase in ("job (ablate.run.run_job)", "build (data + model)", "fit", "training epochs", "Trainer()",
                  "epoch-end callbacks (probes, checkpoint)", "checkpoint save"):
        assert phase in rows, (phase, result.stdout)
    assert rows["fit"][-4] == "1" and float(rows["fit"][-3]) > 0            # calls, CPU seconds
    assert rows["whole process"][-2] == "100.0%"
    assert read_record(tmp_path / "run")["status"] == "ok"


def test_same_records_ignores_times_and_the_folder_and_catches_any_other_difference(compose_cfg, tmp_path):
    import json
    import math

    from ablate.bench.same_records import compare
    from ablate.run import run_trial

    for side in ("a", "b"):      # the same trial twice, each in its own folder: the same records
        run_trial(compose_cfg(["budget=smoke", "budget.max_epochs=1", "logger=none"], run_dir=tmp_path / side / "job"))
    assert compare(tmp_path / "a", tmp_path / "b") == []
    path = tmp_path / "b" / "job" / "record.json"
    record = json.loads(path.read_text())
    record["wall_time_s"] *= 2
    record["probes"]["throughput"]["seconds"] *= 2
    path.write_text(json.dumps(record))
    assert compare(tmp_path / "a", tmp_path / "b") == []
    record["metrics"]["val/loss"] = math.nextafter(record["metrics"]["val/loss"], math.inf)   # one ulp
    path.write_text(json.dumps(record))
    problems = compare(tmp_path / "a", tmp_path / "b")
    assert len(problems) == 1 and "metrics.val/loss" in problems[0]
    (tmp_path / "b" / "extra").mkdir()
    (tmp_path / "b" / "extra" / "record.json").write_text(path.read_text())
    assert any("extra: only in" in p for p in compare(tmp_path / "a", tmp_path / "b"))


def test_same_numbers_leaves_out_the_timings():
    from ablate.bench.common import same_numbers

    a = {"r1": {"metrics": {"test/acc": 0.5, "speed/epoch_s": 1.0}}, "r2": {"metrics": {"test/acc": 0.6}}}
    b = {"r1": {"metrics": {"test/acc": 0.5, "speed/epoch_s": 2.0}}, "r2": {"metrics": {"test/acc": 0.7}},
         "r3": {"metrics": {}}}
    assert same_numbers(a, b) == (1, 3)      # r1 differs only in a timing; r2 in a number; r3 on one side
