"""Controls: the conditions under which a claim's checks mean something. A failed control makes
every clause it guards "not informative at this budget", whatever its checks said; the config check
refuses a bad control naming the field and the valid values."""

from __future__ import annotations

import json
import math

import pytest
from scipy import stats as st

from ablate.report import build_report
from ablate.report.judge import stats
from ablate.report.judge.claim import judge_claim
from ablate.report.judge.controls import judge_control
from ablate.report.spec.claim import claim_errors, parse_claim
from ablate.report.spec.controls import Threshold, parse_control, parse_threshold
from tests.report.records import make_record, write_sweep

CELLS = {"lstm": [0.12, 0.13, 0.11], "rnn": [0.90, 0.95, 1.00], "gru": [0.60, 0.65, 0.70]}
CHECK = {"metric": "test/acc", "goal": "max", "factor": "model.cell"}


def records(cells=CELLS, claim=None, num_classes=8, status=None):
    out = []
    for cell, values in cells.items():
        for seed, v in enumerate(values):
            s = (status or {}).get((cell, seed), "ok")
            out.append(make_record(f"{cell}{seed}", {"model.cell": cell}, seed,
                                   {"test/acc": v if s == "ok" else float("nan"), "val/acc": v},
                                   status=s, claim=claim, num_classes=num_classes))
    return out


def claim(*controls, checks=None):
    return {"name": "cells", "statement": "gates help",
            "clauses": [{"name": "gates", "text": "gates help"}, {"name": "short", "text": "rnn learns"}],
            "controls": list(controls),
            "checks": checks or [dict(CHECK, name="rnn beats lstm", clause="gates", treatment="rnn", baseline="lstm"),
                                 dict(CHECK, name="rnn beats gru", clause="short", treatment="rnn", baseline="gru")]}


def ctrl(**changes):
    return parse_control(dict(LSTM_LEARNS, **changes), ["gates", "short"])


LSTM_LEARNS = {"name": "lstm_learns", "text": "the LSTM learns", "metric": "test/acc",
               "where": {"model.cell": "lstm"}, "above": "chance + 0.1", "clauses": ["gates"]}


def test_a_failed_control_makes_its_clauses_not_informative_whatever_the_checks_said():
    plain = judge_claim(records(), claim())
    assert [c.verdict for c in plain.clauses] == [stats.SUPPORTED, stats.SUPPORTED] and plain.verdict == stats.SUPPORTED
    result = judge_claim(records(), claim(LSTM_LEARNS))
    gates, short = result.clauses
    assert gates.verdict == stats.NOT_INFORMATIVE and gates.judged == stats.SUPPORTED
    assert gates.failed_controls == ("lstm_learns",)
    assert short.verdict == stats.SUPPORTED and not short.failed_controls
    # the checks keep their own verdicts (and the sweeper its seeds); only the clause and the claim change
    assert [c.verdict for c in result.checks] == [c.verdict for c in plain.checks]
    assert result.verdict == stats.NOT_INFORMATIVE
    assert "not informative at this budget: control lstm_learns fails (clauses gates)" in result.reason
    (control,) = result.controls
    assert not control.holds and control.above == pytest.approx(1 / 8 + 0.1)
    (g,) = control.groups
    assert g.n == 3 and g.mean == pytest.approx(0.12)
    assert g.low == pytest.approx(0.12 - st.t.ppf(0.975, 2) * 0.01 / math.sqrt(3))


def test_a_control_that_holds_changes_nothing_and_one_without_clauses_guards_every_clause():
    holds = dict(LSTM_LEARNS, where={"model.cell": "rnn"}, above="chance + 0.5")
    result = judge_claim(records(), claim(holds))
    assert result.controls[0].holds and result.verdict == stats.SUPPORTED
    everywhere = {k: v for k, v in LSTM_LEARNS.items() if k != "clauses"}
    result = judge_claim(records(), claim(everywhere))
    assert [c.verdict for c in result.clauses] == [stats.NOT_INFORMATIVE] * 2


def test_a_not_supported_clause_still_makes_the_claim_not_supported():
    checks = [dict(CHECK, name="lstm beats rnn", clause="gates", treatment="lstm", baseline="rnn"),
              dict(CHECK, name="gru beats rnn", clause="short", treatment="gru", baseline="rnn")]
    guard_short = dict(LSTM_LEARNS, clauses=["short"])
    result = judge_claim(records(), claim(guard_short, checks=checks))
    assert [c.verdict for c in result.clauses] == [stats.NOT_SUPPORTED, stats.NOT_INFORMATIVE]
    assert result.verdict == stats.NOT_SUPPORTED


def test_combine_labels_an_undecided_claim_not_informative():
    assert stats.combine([stats.SUPPORTED, stats.NOT_INFORMATIVE]) == stats.NOT_INFORMATIVE
    assert stats.combine([stats.INCONCLUSIVE, stats.NOT_INFORMATIVE]) == stats.NOT_INFORMATIVE
    assert stats.combine([stats.NOT_SUPPORTED, stats.NOT_INFORMATIVE]) == stats.NOT_SUPPORTED
    assert stats.combine([stats.SUPPORTED, stats.INCONCLUSIVE]) == stats.INCONCLUSIVE


def test_the_rule_is_the_one_sided_bound_not_the_mean():
    # mean 0.30 clears 0.25, but with this spread its 97.5% lower bound does not: the control fails
    wide = {"lstm": [0.10, 0.30, 0.50], "rnn": [0.9, 0.95, 1.0], "gru": [0.6, 0.65, 0.7]}
    spec = ctrl(above=0.25)
    result = judge_control(records(wide), spec)
    assert result.groups[0].mean == pytest.approx(0.30) and not result.holds
    tight = dict(wide, lstm=[0.29, 0.30, 0.31])
    assert judge_control(records(tight), spec).holds
    # fewer than 2 values: cannot be shown to hold
    assert not judge_control(records(dict(wide, lstm=[0.9])), spec).holds
    # below: the upper bound must lie below the threshold
    assert judge_control(records(), ctrl(above=None, below=0.2)).holds
    assert not judge_control(records(), ctrl(above=None, below=0.13)).holds


def test_diverged_runs_count_as_chance_and_chance_needs_num_classes():
    cells = dict(CELLS, lstm=[0.9, 0.95, 1.0, 0.9])
    spec = ctrl(above=0.5)
    assert judge_control(records(cells), spec).holds
    diverged = judge_control(records(cells, status={("lstm", 3): "diverged"}), spec)
    g = diverged.groups[0]
    assert g.counts["diverged"] == 1 and g.n == 4 and g.mean == pytest.approx((0.9 + 0.95 + 1.0 + 0.125) / 4)
    unknown = judge_control(records(num_classes=None), ctrl())
    assert not unknown.holds and "num_classes" in unknown.reason


def test_each_and_tune():
    recs = []
    for cell, best in (("lstm", 0.9), ("rnn", 0.3)):
        for lr, shift in ((0.001, -0.2), (0.01, 0.0)):
            for seed in range(3):
                v = best + shift + 0.01 * seed
                recs.append(make_record(f"{cell}{lr}{seed}", {"model.cell": cell, "optimizer.lr": lr}, seed,
                                        {"test/acc": v, "val/acc": v}, num_classes=8))
    spec = parse_control({"name": "each_learns", "metric": "test/acc", "each": "model.cell", "tune": "optimizer.lr",
                          "above": 0.5})
    result = judge_control(recs, spec)
    lstm, rnn = sorted(result.groups, key=lambda g: g.level)
    assert lstm.holds and lstm.tuned == 0.01 and lstm.n == 3 and lstm.mean == pytest.approx(0.91)
    assert not rnn.holds and rnn.tuned == 0.01 and not result.holds
    both = judge_control(recs, parse_control({"name": "cells", "metric": "test/acc", "each": ["model.cell", "optimizer.lr"],
                                              "above": 0.5}))
    assert [g.level for g in both.groups] == [("lstm", 0.001), ("lstm", 0.01), ("rnn", 0.001), ("rnn", 0.01)]
    assert [g.holds for g in both.groups] == [True, True, False, False]
    # a list of levels in where restricts the levels each reads
    only = judge_control(recs, parse_control({"name": "lstm", "metric": "test/acc", "where": {"model.cell": ["lstm"]},
                                              "each": "model.cell", "above": 0.5}))
    assert [g.level for g in only.groups] == [("lstm",)] and only.holds and not only.spec.problems


def test_thresholds_parse():
    assert parse_threshold(0.3) == (Threshold(0.3), None)
    assert parse_threshold("chance") == (Threshold(0.0, chance=True), None)
    assert parse_threshold("chance + 0.05")[0] == Threshold(0.05, chance=True)
    assert parse_threshold("chance-0.5")[0] == Threshold(-0.5, chance=True)
    assert parse_threshold("chance - 0.5")[0].text == "chance - 0.5"
    assert parse_threshold("high")[1] == "='high' is invalid; valid values: a number, chance, chance + x or chance - x"


@pytest.mark.parametrize("control, expected", [
    ({"above": "high"}, "claim.controls[0].above='high' is invalid; valid values: a number, chance, chance + x or chance - x"),
    ({"above": None}, "claim.controls[0].above is missing: a control needs above: and/or below:"),
    ({"clauses": ["nope"]}, "claim.controls[0].clauses names 'nope', not a declared clause; valid values: gates, short"),
    ({"clauses": "gates"}, "claim.controls[0].clauses must be a non-empty list of clause names"),
    ({"metric": None}, "claim.controls[0].metric is missing"),
    ({"colour": "red"}, "claim.controls[0] has unknown field(s) colour; valid fields: name, text, metric, where"),
    ({"metric": "grad/x"}, "claim.controls[0].above='chance + 0.1' needs a metric */acc or */loss to know chance"),
    ({"on_diverged": "skip"}, "claim.controls[0].on_diverged='skip' is invalid; valid values: worst, chance, exclude"),
    ({"where": "lstm"}, "claim.controls[0].where must be a mapping"),
    ({"tune": "model.cell"}, "claim.controls[0].tune='model.cell' is fixed by where"),
    ({"each": ["model.cell"]}, "claim.controls[0].each='model.cell' is fixed by where to one level"),
    ({"each": []}, "claim.controls[0].each=[] is invalid: it must be a config key"),
    ({"each": "seed", "tune": "seed"}, "claim.controls[0].each and tune both name 'seed'"),
    ({"select_on": "val/acc"}, "claim.controls[0].select_on applies to controls with tune only"),
    ({"above": 0.5, "below": 0.2}, "claim.controls[0].below=0.2 must be larger than above=0.5"),
    ({"transform": "ln"}, "claim.controls[0].transform='ln' is invalid; valid values: log10"),
])
def test_a_bad_control_is_a_config_error_naming_the_field(control, expected):
    errors = claim_errors(claim(dict(LSTM_LEARNS, **control)))
    assert any(expected in e for e in errors), errors
    spec, _ = parse_claim(claim(dict(LSTM_LEARNS, **control)))
    assert spec.controls[0].problems  # and the report says why it cannot hold


def test_controls_block_errors():
    assert claim_errors(claim(LSTM_LEARNS)) == []
    assert any("claim.controls must be a list" in e for e in claim_errors(dict(claim(), controls={"a": 1})))
    assert any("claim.controls[1].name='lstm_learns' is declared twice" in e
               for e in claim_errors(claim(LSTM_LEARNS, LSTM_LEARNS)))


def test_the_config_check_refuses_a_bad_control():
    from ablate.validate import claim_errors as config_check

    assert any("claim.controls[0].above='high' is invalid" in e
               for e in config_check(claim(dict(LSTM_LEARNS, above="high"))))


def test_the_report_and_verdict_json_show_the_controls_with_their_numbers(tmp_path):
    c = claim(LSTM_LEARNS, dict(LSTM_LEARNS, name="rnn_learns", where={"model.cell": "rnn"}, clauses=["short"]))
    root = write_sweep(tmp_path / "s", records(claim=c))
    text = build_report(root).read_text()
    assert "**not informative at this budget**" in text
    assert "**Controls**: the conditions under which the checks mean something (1 of 2 holds)" in text
    row = next(line for line in text.splitlines() if line.startswith("| `lstm_learns`"))
    assert "test/acc > chance + 0.1 = 0.225" in row and "model.cell=lstm" in row and "**fails**" in row
    assert "| 3 | 0.120 | 0.0952 |" in row
    assert "control lstm_learns fails, so it cannot speak here (its checks said: supported)" in text
    guide = text.split("## How to read this report", 1)[1]
    assert "**not informative at this budget**" in guide and "control" in guide
    data = json.loads((root / "verdict.json").read_text())
    (cl,) = data["claims"]
    assert cl["verdict"] == stats.NOT_INFORMATIVE
    assert cl["clauses"][0]["verdict"] == stats.NOT_INFORMATIVE and cl["clauses"][0]["checks_verdict"] == stats.SUPPORTED
    assert cl["clauses"][0]["failed_controls"] == ["lstm_learns"]
    lstm, rnn = cl["controls"]
    assert (lstm["holds"], rnn["holds"]) == (False, True)
    assert lstm["above"] == "chance + 0.1" and lstm["above_value"] == pytest.approx(0.225)
    assert lstm["groups"][0]["n"] == 3 and lstm["groups"][0]["mean"] == pytest.approx(0.12)
    assert lstm["groups"][0]["low"] == pytest.approx(0.0952, abs=1e-4) and lstm["confidence"] == 0.975
    assert lstm["summary"].startswith("lstm_learns fails: test/acc > chance + 0.1 = 0.225, where model.cell=lstm: "
                                      "mean 0.120, one-sided 97.5% lower bound 0.0952 (3 runs): fails")


def test_the_catalogue_index_shows_and_counts_not_informative(tmp_path):
    from ablate.catalogue import write_index

    c = claim(LSTM_LEARNS)
    build_report(write_sweep(tmp_path / "cells", records(claim=c)))
    text = write_index(tmp_path, ["cells"], []).read_text()
    row = next(line for line in text.splitlines() if line.startswith("| `cells`"))
    assert "**not informative at this budget** gates help" in row and "**supported** rnn learns" in row
    assert "1 **not informative at this budget**" in text and "**not informative at this budget**, whatever" in text


def test_on_a_users_model_a_control_none_of_whose_cells_ran_does_not_apply():
    class Everything:   # an Applicability under which every check applies
        applies, reason = True, None

        def clause_reasons(self, claim):
            return {}

        def apply(self, claim):
            return claim

    absent = dict(LSTM_LEARNS, where={"model.cell": "transformer"})
    assert judge_claim(records(), claim(absent)).verdict == stats.NOT_INFORMATIVE   # ours: a control that cannot hold
    result = judge_claim(records(), claim(absent), applicability=Everything())
    assert result.verdict == stats.SUPPORTED and not result.controls
    assert any("lstm_learns: no run of its cells on this model and data" in n for n in result.notes)
