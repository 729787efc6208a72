"""ablate.report.values: reading a record's levels, comparing them, choosing the best level."""

from __future__ import annotations

import pytest

from ablate.report.records import values
from tests.report.records import make_record


def test_levels_compare_robustly():
    assert values.same_level(True, "true") and values.same_level("False", False)
    assert values.same_level(8, "8") and values.same_level("8.0", 8) and values.same_level("1e-3", 0.001)
    assert not values.same_level(True, 1) and not values.same_level("true", "1")
    assert values.fmt_level(True) == "true" and values.fmt_level(0.001) == "0.001"
    # "none" is a level name (model.norm=none), only null is None.
    assert values.canonical("none") == "none" and values.canonical("null") is None


def test_canonical_reads_text_as_hydras_override_parser_does():
    assert values.canonical(" 0.0001 ") == 0.0001 and values.canonical("8.0") == 8 and values.canonical("1_000") == 1000
    assert values.canonical("'8'") == "8"             # quoted: a string, as on Hydra's command line
    assert values.canonical("a,b") == "a,b" and values.canonical("[1,2]") == "[1,2]"  # sweeps, lists: text
    assert values.canonical(8.0) == 8 and values.canonical(2.5) == 2.5


def test_get_value_reads_config_then_overrides():
    r = make_record("x", {"model.depth": 8, "model.residual": True}, 0, {"train/loss": 1.0})
    assert values.get_value(r, "model.depth") == 8
    r2 = make_record("y", {"model.depth": 8}, 0, {"train/loss": 1.0}, overrides_only=True)
    assert values.get_value(r2, "model.depth") == 8  # from the override text "8"
    # A config group resolves to a dict: its level is the override's text.
    r3 = make_record("z", {}, 0, {"train/loss": 1.0})
    r3["config"]["optimizer"] = {"_target_": "torch.optim.Adam", "lr": 0.01}
    r3["overrides"]["optimizer"] = "adam"
    assert values.get_value(r3, "optimizer") == "adam"
    assert values.get_value(r3, "optimizer.lr") == 0.01


def test_group_factor_levels_come_from_choices():
    r = make_record("x", {}, 0, {"train/loss": 1.0})
    r["config"]["activation"] = {"_target_": "torch.nn.ReLU"}
    r["choices"] = {"activation": "relu", "model": "mlp"}
    assert values.get_value(r, "activation") == "relu"
    del r["choices"]
    assert values.get_value(r, "activation") == "ReLU"  # last resort: the target's class name


def test_best_level_is_the_one_tuning_loop():
    rows = [make_record(f"{lr}-{s}", {"optimizer.lr": lr}, s, {"val/loss": loss + 0.01 * s})
            for lr, loss in ((0.1, 0.5), (0.01, 0.3), (0.001, 0.9)) for s in range(2)]
    def read(at):
        return [values.metric_value(r, "val/loss") for r in at]
    assert values.best_level(rows, "optimizer.lr", read, "min") == (0.01, pytest.approx(0.305))
    assert values.best_level(rows, "optimizer.lr", read, "max")[0] == 0.001
    assert values.best_level(rows, "optimizer.lr", lambda at: [float("nan")] * len(at), "min") == (None, None)


def test_cell_key_ignores_the_seed_and_the_order():
    a = make_record("a", {"model.depth": 8, "model.residual": True}, 0, {})
    b = make_record("b", {"model.residual": True, "model.depth": 8}, 3, {})
    assert values.record_cell(a) == values.record_cell(b) == (("model.depth", "8"), ("model.residual", "true"))
    assert values.cell_key({"seed": "1", "x": None}) == (("x", ""),)


def test_a_pooled_side_matches_any_of_its_levels():
    rows = [make_record(f"r{lr}", {"optimizer.lr": lr}, 0, {}) for lr in (0.001, 0.01, 0.1, 1.0)]
    assert [r["run_id"] for r in values.matching(rows, "optimizer.lr", (0.1, "1.0"))] == ["r0.1", "r1.0"]
    assert values.at_level(0.01, (0.001, 0.01)) and not values.at_level(0.1, (0.001, 0.01))
    assert values.fmt_level((0.3, 1, True)) == "{0.3, 1, true}"
