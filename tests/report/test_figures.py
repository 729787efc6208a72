"""ablate.report.figures, through the built report: which figures a sweep gets."""

from __future__ import annotations

from ablate.report import build_report
from tests.report.records import history, make_record, optimizer_records, write_sweep


def test_lr_sensitivity_figure_when_lr_is_swept(tmp_path):
    claim = {"name": "opt", "statement": "adam beats sgd", "checks": [{
        "name": "adam < sgd", "metric": "val/loss", "goal": "min", "factor": "optimizer",
        "treatment": "adam", "baseline": "sgd", "tune": "optimizer.lr"}]}
    means = {(o, lr): (0.2 if o == "adam" else 0.5) + lr for o in ("adam", "sgd") for lr in (0.001, 0.01, 0.1)}
    root = write_sweep(tmp_path / "opt", optimizer_records(means, seeds=range(2), claim=claim))
    build_report(root)
    assert (root / "figures" / "lr_sensitivity_val_loss.png").stat().st_size > 5000
    assert "lr_sensitivity_val_loss.png" in (root / "report.md").read_text()


def test_many_cells_colour_training_curves_by_the_check_factor(tmp_path):
    claim = {"name": "norm", "statement": "batch norm trains faster", "checks": [{
        "name": "bn < none", "metric": "train/loss", "goal": "min", "factor": "model.norm",
        "treatment": "batch", "baseline": "none"}]}
    records = [make_record(f"{n}-{lr}-{bs}", {"model.norm": n, "optimizer.lr": lr, "data.batch_size": bs}, 0,
                           {"train/loss": 0.5}, claim=claim, history=history(0.5, 3))
               for n in ("none", "batch", "layer") for lr in (0.01, 0.1) for bs in (16, 64, 256)]
    root = write_sweep(tmp_path / "norm", records)
    text = build_report(root).read_text()
    assert "(18 cells, coloured by model.norm)" in text
    assert "`model.norm` ∈ {batch, layer, none}" in text


def test_a_check_along_the_plot_axis_draws_one_line(tmp_path):
    claim = {"name": "depth", "statement": "shallow beats deep", "plot": {"x": "model.depth", "metric": "train/loss"},
             "checks": [{"name": "2 < 8", "metric": "train/loss", "goal": "min", "factor": "model.depth",
                         "treatment": 2, "baseline": 8}]}
    records = [make_record(f"d{d}-{s}", {"model.depth": d}, s, {"train/loss": d / 10 + 0.01 * s}, claim=claim)
               for d in (2, 8) for s in range(3)]
    root = write_sweep(tmp_path / "depth", records)
    build_report(root)
    assert [p.name for p in (root / "figures").glob("depth_*.png")] == ["depth_train_loss_vs_model_depth.png"]
