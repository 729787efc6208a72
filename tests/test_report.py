"""Comparison reports: statistics and verdicts on hand-made records, aggregation, files, CLI."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import stats as st

from ablate.report import ReportError, build_report, collect, stats
from ablate.report.__main__ import main as cli_main
from ablate.results import validate_record, write_record

ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------------------------------
# Hand-made records
# ---------------------------------------------------------------------------------------------


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    return tree


def _override_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def make_record(run_id: str, factors: dict[str, Any], seed: int, metrics: dict[str, float], *,
                status: str = "ok", error: str | None = None, claim: dict | None = None,
                history: list[dict] | None = None, probes: dict | None = None,
                experiment: str = "toy", overrides_only: bool = False, wandb: dict | None = None) -> dict:
    """A schema-valid run record. ``factors`` are dotted keys; they land in the resolved config
    (typed) and in the overrides (as command-line text), like a Hydra multirun job's."""
    overrides = {k: _override_text(v) for k, v in factors.items()}
    overrides["seed"] = str(seed)
    config = {} if overrides_only else _nest(factors)
    config["seed"] = seed
    record = {
        "schema": 1, "run_id": run_id, "status": status, "error": error, "experiment": experiment,
        "seed": seed, "overrides": overrides, "config": config, "claim": claim,
        "metrics": dict(metrics), "history": history or [], "probes": probes or {}, "params": 1000,
        "wall_time_s": 1.5, "samples_per_s": 1000.0, "epochs_completed": len(history or []),
        "batch_size": {"per_rank": 32, "world_size": 1, "effective": 32},
        "versions": {"python": "3.11", "torch": "x", "lightning": "x", "ablate": "0.1.0", "git_commit": None},
        "started_at": "2026-01-01T00:00:00+00:00", "finished_at": "2026-01-01T00:00:02+00:00",
    }
    if wandb is not None:
        record["wandb"] = wandb
    return validate_record(record)


def write_sweep(root: Path, records: list[dict]) -> Path:
    for record in records:
        write_record(root / record["run_id"], record)
    return root


RESIDUAL_CLAIM = {
    "name": "residual_depth",
    "statement": "Residual connections let very deep networks train; plain networks degrade as depth grows.",
    "plot": {"x": "model.depth", "metric": "train/loss", "logx": True, "logy": False},
    "checks": [{
        "name": "residual has lower train loss than plain at the deepest depth",
        "metric": "train/loss", "goal": "min", "factor": "model.residual",
        "treatment": True, "baseline": False, "where": {"model.depth": "max"},
    }],
}

NOISE = [0.004, -0.008, 0.0, 0.006, -0.002]  # zero-mean, sd 0.0055: "small noise" over 5 seeds


def two_level_records(treat_mean: float, base_mean: float, *, claim: dict | None = None,
                      noise=NOISE, base_noise=None) -> list[dict]:
    base_noise = noise if base_noise is None else base_noise
    claim = claim or {"name": "toy", "statement": "a beats b",
                      "checks": [{"name": "a < b", "metric": "train/loss", "goal": "min", "factor": "model.a",
                                  "treatment": True, "baseline": False}]}
    records = []
    for seed in range(len(noise)):
        records.append(make_record(f"t{seed}", {"model.a": True}, seed,
                                   {"train/loss": treat_mean + noise[seed]}, claim=claim))
        records.append(make_record(f"b{seed}", {"model.a": False}, seed,
                                   {"train/loss": base_mean + base_noise[seed]}, claim=claim))
    return records


def history(final: float, epochs: int = 4) -> list[dict]:
    return [{"epoch": e, "train/loss": final * (epochs - e + 0.5), "val/acc": 0.5 + 0.1 * e} for e in range(epochs)]


def residual_sweep_records() -> list[dict]:
    """depth {2, 8, 32} × residual {true, false} × 3 seeds, plus a diverged and a failed run.
    At depth 32 residual is far better; at depth 2 the two are alike."""
    records = []
    rng = np.random.default_rng(0)
    for depth in (2, 8, 32):
        for residual in (True, False):
            for seed in range(3):
                plain_penalty = 0.0 if residual else {2: 0.0, 8: 0.4, 32: 1.5}[depth]
                loss = 0.2 + plain_penalty + float(rng.normal(0, 0.01))
                jitter = float(rng.normal(0, 0.05))  # seed-to-seed spread in log10 units
                grads = [10.0 ** (-(depth - i) / (4 if residual else 1.5) + jitter) for i in range(depth)]
                records.append(make_record(
                    f"d{depth}-{'res' if residual else 'plain'}-s{seed}",
                    {"model.depth": depth, "model.residual": residual}, seed,
                    {"train/loss": loss, "val/acc": 1 - loss / 3, "grad/first_layer": grads[0]},
                    claim=RESIDUAL_CLAIM, history=history(loss),
                    probes={"grad_norm": {"layers": [f"net.{i}" for i in range(depth)], "init": grads,
                                          "final": [g * 0.5 for g in grads]}},
                    experiment="residual_depth"))
    records.append(make_record("d32-plain-s3", {"model.depth": 32, "model.residual": False}, 3,
                               {"train/loss": float("nan")}, status="diverged",
                               error="loss became nan at epoch 2 | step 40", claim=RESIDUAL_CLAIM,
                               experiment="residual_depth"))
    records.append(make_record("d8-res-s3", {"model.depth": 8, "model.residual": True}, 3, {},
                               status="failed", error="RuntimeError: CUDA out of memory\nTraceback ...",
                               claim=RESIDUAL_CLAIM, experiment="residual_depth"))
    return records


# ---------------------------------------------------------------------------------------------
# Values and aggregation
# ---------------------------------------------------------------------------------------------


def test_levels_compare_robustly():
    assert collect.same_level(True, "true") and collect.same_level("False", False)
    assert collect.same_level(8, "8") and collect.same_level("8.0", 8) and collect.same_level("1e-3", 0.001)
    assert not collect.same_level(True, 1) and not collect.same_level("true", "1")
    assert collect.fmt_level(True) == "true" and collect.fmt_level(0.001) == "0.001"
    # "none" is a level name (model.norm=none), only null is None.
    assert collect.canonical("none") == "none" and collect.canonical("null") is None


def test_get_value_reads_config_then_overrides():
    r = make_record("x", {"model.depth": 8, "model.residual": True}, 0, {"train/loss": 1.0})
    assert collect.get_value(r, "model.depth") == 8
    r2 = make_record("y", {"model.depth": 8}, 0, {"train/loss": 1.0}, overrides_only=True)
    assert collect.get_value(r2, "model.depth") == 8  # from the override text "8"
    # A config group resolves to a dict: its level is the override's text.
    r3 = make_record("z", {}, 0, {"train/loss": 1.0})
    r3["config"]["optimizer"] = {"_target_": "torch.optim.Adam", "lr": 0.01}
    r3["overrides"]["optimizer"] = "adam"
    assert collect.get_value(r3, "optimizer") == "adam"
    assert collect.get_value(r3, "optimizer.lr") == 0.01


def test_swept_factors_exclude_seed_and_constants():
    records = residual_sweep_records()
    for r in records:
        r["overrides"]["trainer.max_epochs"] = "3"  # the same everywhere: not a factor
    assert collect.swept_factors(records) == ["model.depth", "model.residual"]


def test_cell_ci_matches_hand_computation():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    records = [make_record(f"r{i}", {"model.depth": 4}, i, {"train/loss": v}) for i, v in enumerate(values)]
    records.append(make_record("other", {"model.depth": 8}, 0, {"train/loss": 9.0}))
    cells = collect.cells_frame(records)
    row = cells[(cells["model.depth"] == "4") & (cells["metric"] == "train/loss")].iloc[0]
    s = np.std(values, ddof=1)
    half = st.t.ppf(0.975, 4) * s / math.sqrt(5)
    assert row["n"] == 5 and row["mean"] == pytest.approx(3.0)
    assert row["std"] == pytest.approx(1.5811388, rel=1e-6)
    assert half == pytest.approx(1.963243, rel=1e-5)  # 2.776445 * 1.581139 / 2.236068
    assert row["ci_low"] == pytest.approx(3.0 - half) and row["ci_high"] == pytest.approx(3.0 + half)
    single = cells[(cells["model.depth"] == "8") & (cells["metric"] == "train/loss")].iloc[0]
    assert single["n"] == 1 and math.isnan(single["ci_low"])


def test_summarize_and_compare_match_scipy():
    a, b = [0.1, 0.12, 0.09, 0.11], [1.0, 1.3, 0.8, 1.1, 0.95]
    c = stats.compare(a, b)
    ref = st.ttest_ind(a, b, equal_var=False)
    assert c.t == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 5
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 4)
    half = st.t.ppf(0.975, df) * math.sqrt(va + vb)
    diff = np.mean(a) - np.mean(b)
    assert c.df == pytest.approx(df) and c.diff == pytest.approx(diff)
    assert (c.diff_low, c.diff_high) == (pytest.approx(diff - half), pytest.approx(diff + half))
    sp = math.sqrt((3 * np.var(a, ddof=1) + 4 * np.var(b, ddof=1)) / 7)
    assert c.g == pytest.approx(diff / sp * (1 - 3 / (4 * 9 - 9)))


# ---------------------------------------------------------------------------------------------
# Verdicts
# ---------------------------------------------------------------------------------------------


def test_large_effect_in_claimed_direction_is_supported():
    records = two_level_records(0.1, 1.0)
    claim = stats.judge_claim(records, records[0]["claim"])
    check = claim.checks[0]
    assert check.verdict == stats.SUPPORTED and claim.verdict == stats.SUPPORTED
    assert check.comparison.treatment.n == 5 and check.comparison.baseline.n == 5
    assert check.comparison.treatment.mean == pytest.approx(0.1) and check.comparison.baseline.mean == pytest.approx(1.0)
    assert check.comparison.p < 1e-6 and check.comparison.g < -50
    line = check.line()
    assert line.startswith("supported — model.a=true 0.100 ± ")
    assert "vs model.a=false 1.00 ± " in line and "n=5 each" in line and "Welch t=" in line and "p=" in line


def test_no_effect_is_inconclusive():
    noise_b = [-0.002, 0.006, 0.0, -0.008, 0.004]  # the same spread, shuffled
    records = two_level_records(0.5, 0.5, base_noise=noise_b)
    check = stats.judge_claim(records, records[0]["claim"]).checks[0]
    assert check.verdict == stats.INCONCLUSIVE
    assert check.comparison.p > 0.05
    assert "within seed noise" in check.reason and "within seed noise" in check.line()


def test_effect_in_the_wrong_direction_is_not_supported():
    records = two_level_records(1.0, 0.1)
    claim = stats.judge_claim(records, records[0]["claim"])
    assert claim.checks[0].verdict == stats.NOT_SUPPORTED and claim.verdict == stats.NOT_SUPPORTED
    assert "opposite direction" in claim.checks[0].reason


def test_goal_max_flips_the_direction():
    records = two_level_records(0.9, 0.5)
    check = dict(records[0]["claim"]["checks"][0], metric="train/loss", goal="max")
    assert stats.judge_check(records, check).verdict == stats.SUPPORTED


def test_one_seed_a_side_is_inconclusive_and_says_why():
    records = two_level_records(0.1, 1.0, noise=[0.0])
    check = stats.judge_claim(records, records[0]["claim"]).checks[0]
    assert check.verdict == stats.INCONCLUSIVE
    assert "n=1" in check.reason and "at least 2" in check.reason


def test_only_ok_runs_count():
    records = two_level_records(0.1, 1.0)
    # The baseline's seeds all diverge: nothing left to compare.
    for r in records:
        if r["run_id"].startswith("b"):
            r["status"], r["error"], r["metrics"] = "diverged", "nan loss", {"train/loss": None}
    check = stats.judge_claim(records, records[0]["claim"]).checks[0]
    assert check.verdict == stats.INCONCLUSIVE
    assert check.comparison.baseline.n == 0
    assert "no ok run with model.a=false" in check.reason
    assert any("5 diverged" in n for n in check.notes)


def test_claim_verdict_combines_checks():
    S, N, I = stats.SUPPORTED, stats.NOT_SUPPORTED, stats.INCONCLUSIVE
    assert stats.claim_verdict([S, S]) == S
    assert stats.claim_verdict([S, I]) == I
    assert stats.claim_verdict([S, I, N]) == N
    assert stats.claim_verdict([]) == I


def test_tune_picks_each_sides_best_learning_rate():
    # adam is best at lr=0.001, sgd at lr=0.1; compared there, adam (0.20) beats sgd (0.30).
    means = {("adam", 0.001): 0.20, ("adam", 0.01): 0.50, ("adam", 0.1): 2.0,
             ("sgd", 0.001): 1.50, ("sgd", 0.01): 0.60, ("sgd", 0.1): 0.30}
    claim = {"name": "opt", "statement": "adam beats sgd when each is tuned", "checks": [{
        "name": "adam beats sgd at their best lr", "metric": "val/loss", "goal": "min", "factor": "optimizer",
        "treatment": "adam", "baseline": "sgd", "tune": "optimizer.lr"}]}
    records = []
    for (opt, lr), mean in means.items():
        for seed in range(4):
            r = make_record(f"{opt}-{lr}-{seed}", {"optimizer.lr": lr}, seed,
                            {"val/loss": mean + NOISE[seed]}, claim=claim)
            r["config"]["optimizer"]["_target_"] = f"torch.optim.{opt.upper()}"
            r["overrides"]["optimizer"] = opt
            records.append(r)
    check = stats.judge_claim(records, claim).checks[0]
    assert check.tuned == {"treatment": 0.001, "baseline": 0.1}
    assert check.comparison.treatment.mean == pytest.approx(0.20 + np.mean(NOISE[:4]))
    assert check.comparison.baseline.mean == pytest.approx(0.30 + np.mean(NOISE[:4]))
    assert sorted(check.run_ids["treatment"]) == [f"adam-0.001-{s}" for s in range(4)]
    assert sorted(check.run_ids["baseline"]) == [f"sgd-0.1-{s}" for s in range(4)]
    assert check.verdict == stats.SUPPORTED
    assert "each side at its own best optimizer.lr (treatment at 0.001, baseline at 0.1)" in check.setup()


def test_spread_compares_sensitivity_over_a_grid_on_common_levels():
    # adam: flat over the lr grid (sd ~0.01); sgd: steep (sd ~0.3). adam diverges at lr=1, so lr=1
    # is left out for both sides: a divergence must not make a side look *less* sensitive.
    claim = {"name": "opt", "statement": "adam is less sensitive to the lr", "checks": [{
        "name": "adam varies less over the lr grid", "metric": "val/acc", "goal": "min",
        "factor": "optimizer", "treatment": "adam", "baseline": "sgd", "spread": "optimizer.lr"}]}
    grid = (0.001, 0.01, 0.1, 1.0)
    acc = {"adam": [0.90, 0.91, 0.89, None], "sgd": [0.20, 0.50, 0.85, 0.10]}
    records = []
    for opt, values in acc.items():
        for seed in range(4):
            for lr, a in zip(grid, values):
                status = "ok" if a is not None else "diverged"
                r = make_record(f"{opt}-{lr}-{seed}", {"optimizer.lr": lr}, seed,
                                {"val/acc": (a + 0.004 * seed) if a is not None else None},
                                status=status, error=None if a is not None else "nan loss", claim=claim)
                r["config"]["optimizer"]["_target_"] = f"torch.optim.{opt}"
                r["choices"] = {"optimizer": opt}  # a config group: the level is the group choice
                records.append(r)
    check = stats.judge_claim(records, claim).checks[0]
    assert check.spread_grid == [0.001, 0.01, 0.1]
    assert any("optimizer.lr=1 left out of the spread: no ok run for treatment" in n for n in check.notes)
    assert check.comparison.treatment.n == 4 and check.comparison.baseline.n == 4
    assert check.comparison.treatment.mean == pytest.approx(np.std([0.90, 0.91, 0.89], ddof=1))
    assert check.comparison.baseline.mean == pytest.approx(np.std([0.20, 0.50, 0.85], ddof=1))
    assert check.verdict == stats.INCONCLUSIVE  # identical spreads on every seed: no variance
    # Seed-to-seed variation in the spread: now the test is defined, and adam's spread is smaller.
    for r in records:
        if r["status"] == "ok" and r["run_id"].startswith("sgd-0.001"):
            r["metrics"]["val/acc"] -= 0.02 * r["seed"]
    check = stats.judge_claim(records, claim).checks[0]
    assert check.verdict == stats.SUPPORTED
    assert check.metric_label == "sd of val/acc over optimizer.lr"
    assert "sd over the optimizer.lr grid (0.001, 0.01, 0.1)" in check.setup()
    assert len(check.run_ids["treatment"]) == 12


def test_group_factor_levels_come_from_choices():
    r = make_record("x", {}, 0, {"train/loss": 1.0})
    r["config"]["activation"] = {"_target_": "torch.nn.ReLU"}
    r["choices"] = {"activation": "relu", "model": "mlp"}
    assert collect.get_value(r, "activation") == "relu"
    del r["choices"]
    assert collect.get_value(r, "activation") == "ReLU"  # last resort: the target's class name


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (ROOT / "conf" / "experiment").glob("*.yaml")))
def test_every_experiment_claim_can_be_judged(experiment, tmp_path):
    """The claims the experiment configs declare use only what the report understands: build the
    experiment's sweep grid with made-up metrics and check every check is evaluated."""
    import itertools

    import yaml

    conf = yaml.safe_load((ROOT / "conf" / "experiment" / f"{experiment}.yaml").read_text())
    claim = conf.get("claim")
    if not claim:
        pytest.skip(f"{experiment} declares no claim")
    params = {k: [v.strip() for v in str(vals).split(",")]
              for k, vals in conf["hydra"]["sweeper"]["params"].items() if k != "seed"}
    groups = {k for k in params if "." not in k}  # config groups: activation, norm, optimizer
    rng = np.random.default_rng(0)
    records = []
    for combo in itertools.product(*params.values()):
        for seed in range(3):
            factors = {k: collect.canonical(v) for k, v in zip(params, combo) if k not in groups}
            metrics = {m: float(rng.uniform(0.1, 1.0)) for m in
                       ("train/loss", "val/acc", "val/loss", "grad/first_layer", "grad/first_last_ratio")}
            run_id = "-".join([experiment, *combo, str(seed)]).replace(".", "p")
            r = make_record(run_id, factors, seed, metrics, claim=claim, experiment=experiment,
                            history=history(metrics["train/loss"]))
            r["choices"] = {}
            for k, v in zip(params, combo):
                if k in groups:
                    r["config"][k] = {"_target_": f"x.{v}"}
                    r["choices"][k] = v
                    r["overrides"][k] = v
            records.append(r)
    result = stats.judge_claim(records, claim)
    assert len(result.checks) == len(claim["checks"])
    for check in result.checks:
        assert "malformed" not in check.reason and "valid:" not in check.reason, check.reason
        assert check.comparison.treatment.n >= 2 and check.comparison.baseline.n >= 2, check.line()
    root = write_sweep(tmp_path / experiment, records)
    text = build_report(root).read_text()
    assert f"## Claim: {claim['name']}" in text


def test_where_max_filters_to_the_deepest_level():
    records = residual_sweep_records()
    claim = stats.judge_claim(records, RESIDUAL_CLAIM)
    check = claim.checks[0]
    assert check.where == {"model.depth": 32}
    # Three ok seeds a side at depth 32 (the diverged plain seed is not one of them).
    assert check.comparison.treatment.n == 3 and check.comparison.baseline.n == 3
    assert all(rid.startswith("d32-res") for rid in check.run_ids["treatment"])
    assert all(rid.startswith("d32-plain") for rid in check.run_ids["baseline"])
    assert check.comparison.baseline.mean == pytest.approx(1.7, abs=0.05)
    assert check.verdict == stats.SUPPORTED
    assert any("1 diverged" in n for n in check.notes)
    # At the shallowest depth the two are alike: inconclusive.
    shallow = dict(RESIDUAL_CLAIM["checks"][0], where={"model.depth": "min"})
    assert stats.judge_check(records, shallow).verdict == stats.INCONCLUSIVE
    # A literal level works as well, spelled as text.
    literal = dict(RESIDUAL_CLAIM["checks"][0], where={"model.depth": "8"})
    assert stats.judge_check(records, literal).where == {"model.depth": 8}


def test_transform_log10_compares_orders_of_magnitude():
    records = residual_sweep_records()
    check = {"name": "gradients reach the first layer", "metric": "grad/first_layer", "goal": "max",
             "factor": "model.residual", "treatment": True, "baseline": False,
             "where": {"model.depth": "max"}, "transform": "log10"}
    result = stats.judge_check(records, check)
    assert result.verdict == stats.SUPPORTED
    assert result.comparison.treatment.mean == pytest.approx(-32 / 4, abs=0.2)
    assert result.metric_label == "log10(grad/first_layer)"


def test_malformed_check_is_inconclusive_with_reason():
    records = two_level_records(0.1, 1.0)
    result = stats.judge_check(records, {"name": "broken", "metric": "train/loss"})
    assert result.verdict == stats.INCONCLUSIVE and "missing" in result.reason
    result = stats.judge_check(records, dict(records[0]["claim"]["checks"][0], goal="smaller"))
    assert "valid: min, max" in result.reason


# ---------------------------------------------------------------------------------------------
# The built report
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = write_sweep(tmp_path_factory.mktemp("reports") / "residual_depth" / "2026-01-01_00-00-00",
                       residual_sweep_records())
    md = build_report(root)
    return root, md


def test_build_report_writes_every_file(built):
    root, md = built
    assert md == root / "report.md"
    for name in ("report.md", "report.html", "runs.csv", "cells.csv"):
        assert (root / name).stat().st_size > 0
    pngs = sorted(p.name for p in (root / "figures").glob("*.png"))
    assert "training_curves.png" in pngs and "grad_norm_profile.png" in pngs
    assert any(p.startswith("residual_depth_train_loss_vs_model_depth") for p in pngs)
    assert not list(root.rglob("*.tmp"))


def test_report_states_verdict_with_numbers(built):
    root, _ = built
    text = (root / "report.md").read_text()
    assert "# ablate report: residual_depth" in text
    assert "## Claim: residual_depth" in text
    assert "Residual connections let very deep networks train" in text
    assert "**supported** — model.residual=true " in text
    assert "n=3 each" in text and "Welch t=" in text and "Hedges' g=" in text
    assert "where model.depth=32 (max)" in text
    for fig in (root / "figures").glob("*.png"):
        assert f"](figures/{fig.name})" in text


def test_failed_and_diverged_runs_are_counted_and_listed(built):
    root, _ = built
    text = (root / "report.md").read_text()
    assert "20 runs**: 18 ok, 1 diverged, 1 failed" in text
    section = text.split("## Runs that did not finish", 1)[1].split("\n## ", 1)[0]
    assert "**1 diverged, 1 failed** of 20 runs" in section
    assert "`d32-plain-s3` | diverged | 32 | false | 3 | `loss became nan at epoch 2 \\| step 40`" in section
    assert "`d8-res-s3` | failed | 8 | true | 3 | `RuntimeError: CUDA out of memory Traceback ...`" in section
    html = (root / "report.html").read_text()
    assert "d32-plain-s3" in html and "RuntimeError: CUDA out of memory" in html
    runs = pd.read_csv(root / "runs.csv", keep_default_na=False)
    assert len(runs) == 20
    assert list(runs.columns[:6]) == ["run_id", "status", "error", "seed", "model.depth", "model.residual"]
    bad = runs[runs["status"] != "ok"].set_index("run_id")
    assert bad.loc["d32-plain-s3", "status"] == "diverged"
    assert bad.loc["d8-res-s3", "error"].startswith("RuntimeError: CUDA out of memory\nTraceback")
    assert (runs["status"] == "ok").sum() == 18


def test_cells_csv_holds_ci_per_metric(built):
    root, _ = built
    cells = pd.read_csv(root / "cells.csv")
    row = cells[(cells["model.depth"] == 32) & (cells["model.residual"] == False)  # noqa: E712
                & (cells["metric"] == "train/loss")].iloc[0]
    assert (row["runs"], row["ok"], row["n"]) == (4, 3, 3)
    half = st.t.ppf(0.975, 2) * row["std"] / math.sqrt(3)
    assert row["ci_high"] - row["mean"] == pytest.approx(half, rel=1e-6)


def test_build_is_deterministic(built, tmp_path):
    root, _ = built
    first = {n: (root / n).read_bytes() for n in ("report.md", "report.html", "runs.csv", "cells.csv")}
    figs = {p.name: p.read_bytes() for p in (root / "figures").glob("*.png")}
    build_report(root)
    assert {n: (root / n).read_bytes() for n in first} == first
    assert {p.name: p.read_bytes() for p in (root / "figures").glob("*.png")} == figs
    # Into another folder: the same report (the figure links are relative).
    md = build_report(root, tmp_path / "out")
    assert md.read_bytes() == first["report.md"]
    assert (tmp_path / "out" / "runs.csv").read_bytes() == first["runs.csv"]


def test_rebuild_removes_stale_figures(tmp_path):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    (root / "figures").mkdir()
    (root / "figures" / "old_figure.png").write_bytes(b"x")
    build_report(root)
    assert not (root / "figures" / "old_figure.png").exists()


def test_lr_sensitivity_figure_when_lr_is_swept(tmp_path):
    claim = {"name": "opt", "statement": "adam beats sgd", "checks": [{
        "name": "adam < sgd", "metric": "val/loss", "goal": "min", "factor": "optimizer",
        "treatment": "adam", "baseline": "sgd", "tune": "optimizer.lr"}]}
    records = []
    for opt in ("adam", "sgd"):
        for lr in (0.001, 0.01, 0.1):
            for seed in range(2):
                r = make_record(f"{opt}-{lr}-{seed}", {"optimizer.lr": lr}, seed,
                                {"val/loss": (0.2 if opt == "adam" else 0.5) + lr + 0.01 * seed}, claim=claim)
                r["overrides"]["optimizer"] = opt
                records.append(r)
    root = write_sweep(tmp_path / "opt", records)
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


def test_records_without_claim_still_report(tmp_path):
    records = [make_record(f"r{d}-{s}", {"model.depth": d}, s, {"train/loss": 1.0 / d + 0.01 * s},
                           history=history(1.0 / d)) for d in (2, 4) for s in range(2)]
    root = write_sweep(tmp_path / "noclaim", records)
    text = build_report(root).read_text()
    assert "declare no claim" in text and "Results per cell" in text


def test_empty_or_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(ReportError, match="no run records"):
        build_report(tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        build_report(tmp_path / "nope")


def test_unreadable_record_is_listed_not_fatal(tmp_path):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    (root / "broken").mkdir()
    (root / "broken" / "record.json").write_text("{not json")
    text = build_report(root).read_text()
    assert "Record files that could not be read" in text and "broken/record.json" in text


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def test_cli_exit_codes(tmp_path, capsys, monkeypatch):
    root = write_sweep(tmp_path / "s", two_level_records(0.1, 1.0))
    assert cli_main([str(root), "--out", str(tmp_path / "out")]) == 0
    assert "verdict: supported" in capsys.readouterr().out
    assert (tmp_path / "out" / "report.html").exists()

    (tmp_path / "empty").mkdir()
    assert cli_main([str(tmp_path / "empty")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no run records") and "Traceback" not in err
    assert cli_main([str(tmp_path / "missing")]) == 2

    # --wandb on runs that never logged to W&B: a clear message, nothing built.
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert cli_main([str(root), "--wandb", "--out", str(tmp_path / "w")]) == 2
    assert "did not log to W&B" in capsys.readouterr().err
    assert not (tmp_path / "w").exists()


def test_cli_wandb_offline_fails_fast(tmp_path, capsys, monkeypatch):
    records = two_level_records(0.1, 1.0)
    for r in records:
        r["wandb"] = {"entity": "me", "project": "ablate", "group": "toy-1", "id": r["run_id"]}
    root = write_sweep(tmp_path / "s", records)

    def no_network(*args, **kwargs):
        raise AssertionError("no network call may happen before the offline check")

    monkeypatch.setattr("socket.create_connection", no_network)
    monkeypatch.setenv("WANDB_MODE", "offline")
    assert cli_main([str(root), "--wandb"]) == 2
    assert "WANDB_MODE=offline" in capsys.readouterr().err
    monkeypatch.delenv("WANDB_MODE")
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setattr("ablate.report.wandb_report._api_key", lambda base_url: None)
    assert cli_main([str(root), "--wandb"]) == 2
    assert "no W&B API key" in capsys.readouterr().err


def test_python_dash_m_entry_point(tmp_path):
    (tmp_path / "empty").mkdir()
    proc = subprocess.run([sys.executable, "-m", "ablate.report", str(tmp_path / "empty")],
                          capture_output=True, text=True, cwd=ROOT, env={"PYTHONPATH": str(ROOT / "src"),
                                                                          "PATH": "/usr/bin:/bin"})
    assert proc.returncode == 2, proc.stderr
    assert "no run records" in proc.stderr and "Traceback" not in proc.stderr


def test_records_round_trip_through_schema(tmp_path):
    root = write_sweep(tmp_path / "s", residual_sweep_records())
    for path in root.rglob("record.json"):
        validate_record(json.loads(path.read_text()))
