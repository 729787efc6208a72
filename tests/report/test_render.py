"""ablate.report.present.render: the HTML report is one self-contained page, its badges name every verdict,
and a browser renders it (screenshot check)."""

from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from ablate.report import build_report
from ablate.report.present.render import Document, Verdict, badge, to_html, to_markdown
from tests.report.records import residual_sweep_records, write_sweep
from tests.support import REPO as ROOT


def _load_screenshot_module():
    spec = importlib.util.spec_from_file_location("screenshot_report", ROOT / "scripts" / "screenshot_report.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def report_dir(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("html") / "residual_depth" / "stamp", residual_sweep_records())
    build_report(root)
    return root


def test_html_embeds_every_figure_and_loads_nothing_external(report_dir):
    page = (report_dir / "report.html").read_text()
    figures = sorted((report_dir / "figures").glob("*.png"))
    assert len(figures) >= 3
    assert page.count('<img src="data:image/png;base64,') == len(figures)
    for src in re.findall(r'(?:src|href)\s*=\s*"([^"]*)"', page):
        assert src.startswith("data:image/png;base64,"), src
    assert not re.search(r"(?:src|href)\s*=\s*['\"]?\s*(?:https?:)?//", page)
    assert "<link" not in page and "<script" not in page and "@import" not in page
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")


def test_html_shows_verdict_and_failed_runs(report_dir):
    page = (report_dir / "report.html").read_text()
    assert '<span class="badge v-supported">supported</span>' in page
    assert "Welch t=" in page and "Hedges&#x27; g=" in page
    assert "<h2" in page and "Runs that did not finish" in page
    assert "d32-plain-s3" in page and "loss became nan at epoch 2 | step 40" in page


def test_screenshot_shows_a_rendered_page(report_dir, tmp_path):
    shot = _load_screenshot_module()
    if shot.find_chromium() is None:
        pytest.skip("Chromium is not installed (apt-get install -y chromium); screenshot not taken")
    out = shot.screenshot(report_dir / "report.html", tmp_path / "report.png", timeout=90)
    assert out.stat().st_size > 50_000  # a blank 1280×2400 page compresses to a few KB
    from matplotlib.image import imread

    pixels = imread(out)
    assert pixels.shape[:2] == (2400, 1280)
    rgb = pixels[..., :3]
    assert float(rgb.std()) > 0.05  # not one colour
    # Figures drawn: many distinct colours (plot lines and bands), not only text on white.
    colours = np.unique((rgb[::4, ::4] * 255).astype(np.uint8).reshape(-1, 3), axis=0)
    assert len(colours) > 200


def test_screenshot_cli_reports_missing_page(tmp_path, capsys):
    shot = _load_screenshot_module()
    assert shot.main([str(tmp_path / "nope.html"), str(tmp_path / "x.png")]) == 2
    assert "no such report page" in capsys.readouterr().err


def test_every_verdict_has_its_badge():
    doc = Document("t").add(Verdict("no effect within ±0.02", "x"), Verdict("not tested", "y"),
                            Verdict("not supported", badge("inconclusive")))
    page = to_html(doc)
    assert '<span class="badge v-no-effect">no effect within ±0.02</span>' in page
    assert '<span class="badge v-not-tested">not tested</span>' in page
    assert '<span class="badge v-not-supported">not supported</span>' in page
    assert '<span class="badge v-inconclusive">inconclusive</span>' in page
    assert "**inconclusive**" in to_markdown(doc)
