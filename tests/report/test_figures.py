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


def test_the_headline_reads_its_points_from_the_plot_block_not_from_a_check_on_another_metric(tmp_path, monkeypatch):
    """norm_bn_vs_ln's first check is on train/loss (lower is better) in the wide-rate grid; its
    headline is test/acc per batch size. Borrowing that check's filter and direction drew test/acc
    at each cell's *worst* rate, in the wide grid only: the headline takes them from the plot block."""
    from ablate.report.present import figures

    claim = {"name": "norm", "statement": "bn depends on the batch",
             "plot": {"x": "data.batch_size", "metric": "test/acc", "line": "norm", "where": {"grid": "scaled"},
                      "tune": "optimizer.lr", "goal": "max", "logx": True},
             "checks": [{"name": "bn < none", "metric": "train/loss", "goal": "min", "factor": "norm",
                         "treatment": "batch", "baseline": "layer", "where": {"grid": "wide"}, "tune": "optimizer.lr"},
                        {"name": "bn 32 > 2", "metric": "test/acc", "goal": "max", "factor": "data.batch_size",
                         "treatment": 32, "baseline": 2, "where": {"norm": "batch", "grid": "scaled"}}]}
    records = [make_record(f"{n}-{g}-{b}-{lr}-{s}", {"norm": n, "grid": g, "data.batch_size": b, "optimizer.lr": lr}, s,
                           {"test/acc": (0.5 if lr == 0.01 else 0.1) + 0.01 * s, "train/loss": 1.0 + lr}, claim=claim)
               for n in ("batch", "layer") for g in ("scaled", "wide") for b in (2, 32) for lr in (0.01, 0.1)
               for s in range(2)]
    calls = []
    original = figures.metric_vs_factor
    monkeypatch.setattr(figures, "metric_vs_factor", lambda *a, **k: (calls.append((a, k)), original(*a, **k))[1])
    root = write_sweep(tmp_path / "norm", records)
    text = build_report(root).read_text()
    args, kwargs = calls[0]                                          # the headline comes first
    assert args[2:5] == ("test/acc", "norm", "data.batch_size")
    assert kwargs["where"] == {"grid": "scaled"} and kwargs["goal"] == "max" and kwargs["tune"] == "optimizer.lr"
    assert "grid=scaled; each point at its best optimizer.lr (the highest mean test/acc)" in text
    # without line/where/tune/goal in the plot block, the first check on the plot's metric leads
    del claim["plot"]["line"], claim["plot"]["where"], claim["plot"]["tune"], claim["plot"]["goal"]
    calls.clear()
    build_report(write_sweep(tmp_path / "norm2", records))
    args, kwargs = calls[0]
    assert args[2] == "test/acc" and kwargs["where"] == {"norm": "batch", "grid": "scaled"} and kwargs["goal"] == "max"
