"""``ablate.catalogue``: the one-page index of every claim (a row per claim, a badge per clause, the
headline figure linking to the report), resumable runs, and the page in a real browser."""

from __future__ import annotations

import importlib.util
import json
import re

import pytest

from ablate.catalogue import DONE, experiments, write_index
from ablate.report import build_report
from tests.report.records import residual_sweep_records, write_sweep
from tests.support import REPO, run_ablate


def _screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_report", REPO / "scripts" / "screenshot_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_shipped_experiments_are_listed():
    names = experiments()
    assert names == sorted(p.stem for p in (REPO / "conf" / "experiment").glob("*.yaml"))
    assert {"residual_depth", "norm_bn_vs_ln", "optimizer_adam_vs_sgd", "activation_vanishing"} <= set(names)


def test_the_index_has_a_row_per_claim_a_badge_per_clause_and_the_headline_figure(tmp_path):
    folder = write_sweep(tmp_path / "residual_depth", residual_sweep_records())
    build_report(folder)
    (folder / DONE).write_text(json.dumps({"overrides": [], "returncode": 0, "wall_time_s": 90.0}))
    index = write_index(tmp_path, ["residual_depth", "norm_bn_vs_ln"], ["budget=smoke"])
    text = index.read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `residual_depth`"))
    assert "[report](residual_depth/report.html)" in row and "1.5 min" in row
    thumb = re.search(r"\[!\[[^\]]*\]\((residual_depth/figures/[^)]+\.png)\)\]\(residual_depth/report.html\)", row)
    assert thumb and (tmp_path / thumb.group(1)).is_file()
    assert row.count("**supported**") + row.count("**not supported**") + row.count("**inconclusive**") >= 2
    assert "| `norm_bn_vs_ln` | not run yet |" in text                     # an experiment not run is a row too
    assert "1 claims from 1 of 2 experiments (1 without a verdict yet)" in text
    assert "hardware: " in text and "CPU cores" in text and "versions: " in text
    page = index.with_name("index.html").read_text()
    assert page.count('<img class="thumb" src="data:image/png;base64,') == 1      # self-contained
    assert '<a href="residual_depth/report.html">report</a>' in page
    assert '<span class="badge v-supported">supported</span>' in page


@pytest.mark.slow
def test_the_catalogue_at_smoke_resumes_and_renders_in_a_browser(smoke_catalogue, tmp_path):
    """``--only`` runs the experiments it names (the session fixture ``smoke_catalogue``; their sweeps are
    checked in tests/test_experiments.py), the index has a row per claim with its report, and a relaunch
    with the same folder runs nothing again."""
    out, names, first = smoke_catalogue.dir, smoke_catalogue.names, smoke_catalogue.first
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    text = (out / "index.md").read_text()
    for name in names:
        assert re.search(rf"^\| `{name}` \[report\]\({name}/report.html\)", text, re.M), name
        assert (out / name / "report.html").is_file()
    assert "without a verdict yet" not in text
    others = set(experiments()) - set(names)
    assert not any(f"`{name}`" in text for name in others), "--only ran (or listed) another experiment"

    again = run_ablate(smoke_catalogue.args, cwd=out.parent, module="ablate.catalogue")
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished before") == len(names)       # nothing ran again

    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); screenshot not taken")
    png = shot.screenshot(out / "index.html", tmp_path / "index.png", timeout=90)
    from matplotlib.image import imread

    pixels = imread(png)[..., :3]
    assert float(pixels.std()) > 0.05 and png.stat().st_size > 50_000   # text, badges and thumbnails drawn


def test_the_catalogue_runs_experiments_at_once_at_one_thread_count_and_resumes(tmp_path, monkeypatch, capsys):
    """``--jobs``: experiments run as that many processes at once (by default cores // threads), each
    with the same ``OMP_NUM_THREADS`` whatever the number of jobs, recorded in ``catalogue.json``; a
    relaunch runs none of them again. The experiment processes are replaced by a fake that sleeps."""
    import threading
    import time

    from ablate import catalogue

    running, seen, lock = [0], [], threading.Lock()
    peak = [0]

    def fake_call(command, stdout=None, stderr=None, env=None):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append((command[3], env["OMP_NUM_THREADS"]))
            # experiments fill the cores: each keeps its jobs in its own process (no joblib workers)
            assert "hydra/launcher=basic" in command
        time.sleep(0.4)
        with lock:
            running[0] -= 1
        return 0

    monkeypatch.setattr(catalogue.subprocess, "call", fake_call)
    monkeypatch.setattr(catalogue.parallel, "cores", lambda: 4)
    names = experiments()[:4]
    assert catalogue.experiment_threads([]) == 1 and catalogue.default_jobs(1) == 4   # conf: threads: 1
    assert catalogue.run_all(names, tmp_path / "a", ["budget=smoke", "threads=2"]) == []
    assert "4 experiments, 2 at a time × 2 thread(s) each on 4 cores" in capsys.readouterr().out
    assert peak[0] == 2 and sorted(seen) == sorted((f"+experiment={n}", "2") for n in names)

    peak[0], seen[:] = 0, []
    assert catalogue.run_all(names, tmp_path / "b", ["budget=smoke"], jobs=1) == []
    assert "1 at a time × 1 thread(s) each" in capsys.readouterr().out
    assert peak[0] == 1 and {threads for _, threads in seen} == {"1"}
    done = json.loads((tmp_path / "b" / names[0] / DONE).read_text())
    assert done["threads"] == 1 and done["returncode"] == 0

    seen[:] = []
    assert catalogue.run_all(names, tmp_path / "b", ["budget=smoke"], jobs=3) == []
    assert seen == [] and capsys.readouterr().out.count("finished before") == 4     # resumed: nothing ran
    assert catalogue.main(["--jobs", "0", "--dir", str(tmp_path / "c")]) == 2


def test_the_index_reads_verdict_json_and_is_built_without_report_md(tmp_path, monkeypatch):
    """The catalogue takes each experiment's verdicts and headline figure from its report's
    verdict.json: with report.md deleted and the judge unavailable, the page is still built, the same."""
    folder = write_sweep(tmp_path / "residual_depth", residual_sweep_records())
    build_report(folder)
    before = write_index(tmp_path, ["residual_depth"], ["budget=smoke"]).read_text()
    (folder / "report.md").unlink()

    def no_judging(*args, **kwargs):
        raise AssertionError("the catalogue judged again instead of reading verdict.json")

    monkeypatch.setattr("ablate.report.judge.claim.judge_claim", no_judging)
    monkeypatch.setattr("ablate.report.judge.sweep.judge_claim", no_judging)
    after = write_index(tmp_path, ["residual_depth"], ["budget=smoke"]).read_text()
    strip = lambda text: re.sub(r"built: \S+", "", text)  # noqa: E731 - the page's build time
    assert strip(after) == strip(before)
    verdicts = json.loads((folder / "verdict.json").read_text())
    row = next(line for line in after.splitlines() if line.startswith("| `residual_depth`"))
    assert f"**{verdicts['verdict']}**" in row and verdicts["headline_figure"] in row


def test_a_sweep_without_verdict_json_gets_its_report_built_first(tmp_path):
    folder = write_sweep(tmp_path / "residual_depth", residual_sweep_records())
    assert not (folder / "verdict.json").exists()
    text = write_index(tmp_path, ["residual_depth"], []).read_text()
    assert (folder / "verdict.json").is_file() and (folder / "report.md").is_file()
    assert "**supported**" in next(line for line in text.splitlines() if line.startswith("| `residual_depth`"))


@pytest.mark.slow
def test_the_catalogue_on_a_new_project_lists_what_applies_and_what_does_not(tmp_path):
    """``python -m ablate.new`` in a folder outside the repository, then the catalogue on its model and
    data (its own claim and three shipped experiments): rows with verdicts for what applies, **not
    applicable** rows with the reason for the rest, and the page drawn in a real browser."""
    from tests.support import subprocess_env

    made = run_ablate(["proj"], cwd=tmp_path, module="ablate.new", timeout=120)
    assert made.returncode == 0, made.stderr[-3000:]
    project, out = tmp_path / "proj", tmp_path / "catalogue"
    names = ["cnn_vs_mlp", "learning_rate", "my_claim", "norm_bn_vs_ln"]
    result = run_ablate(["--config-dir", "conf", "model=mynet", "data=mydata", "budget=smoke", "--only", ",".join(names),
                         "--dir", out], cwd=project, module="ablate.catalogue", timeout=1200,
                        env=subprocess_env(PYTHONPATH="."))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    text = (out / "index.md").read_text()
    rows = {name: next(line for line in text.splitlines() if line.startswith(f"| `{name}`")) for name in names}
    for name in ("learning_rate", "my_claim"):                      # applicable: judged, with their reports
        assert f"[report]({name}/report.html)" in rows[name] and "not applicable" not in rows[name]
        assert re.search(r"\*\*(supported|not supported|inconclusive|not informative at this budget|no effect[^*]*)\*\*",
                         rows[name]), rows[name]
        claim = json.loads((out / name / "verdict.json").read_text())["claims"][0]
        assert "mymodel.ResidualMLP" in claim["scope"]["model"]
    assert "**not applicable** it needs its own data, not data=mydata: its equivalence check is sized" in rows["norm_bn_vs_ln"]
    assert "**not applicable** it compares ablate's own families" in rows["cnn_vs_mlp"]
    assert not list((out / "cnn_vs_mlp").rglob("record.json"))      # nothing trained for a claim that does not apply
    assert "2 **not applicable** to mymodel.ResidualMLP on data=mydata" in text
    assert "model and data: mymodel.ResidualMLP on data=mydata" in text

    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); screenshot not taken")
    page = (out / "index.html").read_text()
    assert page.count('<span class="badge v-not-tested">not applicable</span>') >= 4   # the reason's badge and the verdict
    png = shot.screenshot(out / "index.html", tmp_path / "index.png", timeout=90)
    from matplotlib.image import imread

    pixels = imread(png)[..., :3]
    assert float(pixels.std()) > 0.05 and png.stat().st_size > 30_000
