"""``ablate.catalogue``: the one-page index of every claim (a row per claim, a badge per clause, the
headline figure linking to the report), resumable runs, and the page in a real browser."""

from __future__ import annotations

import importlib.util
import json
import re
import subprocess

import pytest

from ablate.catalogue import DONE, experiments, write_index
from ablate.report import build_report
from tests.report.records import residual_sweep_records, write_sweep
from tests.support import PYTHON, REPO


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
def test_the_whole_catalogue_at_smoke_resumes_and_renders_in_a_browser(tmp_path):
    out = tmp_path / "catalogue"
    env_cmd = [PYTHON, "-m", "ablate.catalogue", "budget=smoke", "threads=1", "--dir", str(out)]
    first = subprocess.run(env_cmd, capture_output=True, text=True, timeout=3000, cwd=tmp_path)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    text = (out / "index.md").read_text()
    for name in experiments():
        assert re.search(rf"^\| `{name}` \[report\]\({name}/report.html\)", text, re.M), name
        assert (out / name / "report.html").is_file()
    assert "without a verdict yet" not in text

    again = subprocess.run(env_cmd, capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("finished before") == len(experiments())       # nothing ran again

    shot = _screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); screenshot not taken")
    png = shot.screenshot(out / "index.html", tmp_path / "index.png", timeout=90)
    from matplotlib.image import imread

    pixels = imread(png)[..., :3]
    assert float(pixels.std()) > 0.05 and png.stat().st_size > 50_000   # text, badges and thumbnails drawn
