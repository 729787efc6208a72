"""ablate.report.claims: the claim schema's defaults and every error the config check reports."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from ablate.report.spec.claim import claim_errors, default_select_on, parse_check, parse_claim
from tests.support import REPO

CHECK = {"name": "c", "clause": "a", "metric": "test/acc", "goal": "max", "factor": "optimizer",
         "treatment": "adam", "baseline": "sgd"}


def claim(*checks, clauses=({"name": "a", "text": "A"},), **extra):
    return {"name": "x", "statement": "s", "clauses": list(clauses), "checks": [dict(CHECK, **c) for c in checks], **extra}


def test_a_valid_claim_has_no_errors():
    assert claim_errors(claim({}, {"test": "noninferiority", "margin": 0.01})) == []
    assert claim_errors(None) == []


@pytest.mark.parametrize("check, expected", [
    ({"test": "better"}, "claim.checks[0].test='better' is invalid; valid values: superiority, noninferiority, equivalence"),
    ({"test": "noninferiority"}, "claim.checks[0].margin is missing: a noninferiority check needs a margin"),
    ({"test": "equivalence", "margin": -0.1}, "claim.checks[0].margin=-0.1 is invalid: it must be a number >= 0"),
    ({"test": "equivalence", "margin": "small"}, "claim.checks[0].margin='small' is invalid"),
    ({"clause": "b"}, "claim.checks[0].clause='b' is not a declared clause; valid values: a"),
    ({"on_diverged": "skip"}, "claim.checks[0].on_diverged='skip' is invalid; valid values: worst, chance, exclude"),
    ({"metric": "grad/first_layer", "on_diverged": "chance"}, "on_diverged=chance needs a metric */acc or */loss"),
    ({"spread": "optimizer.lr", "statistic": "range"}, "claim.checks[0].statistic='range' is invalid; valid values: sd, width"),
    ({"spread": "optimizer.lr", "statistic": "width"}, "claim.checks[0].within is missing"),
    ({"goal": "up"}, "claim.checks[0].goal='up' is invalid; valid values: min, max"),
    ({"tune": "optimizer.lr", "spread": "optimizer.lr"}, "tune and spread cannot be combined"),
    ({"colour": "red"}, "claim.checks[0] has unknown field(s) colour"),
    ({"fresh_seeds": True}, "fresh_seeds applies to tune checks only"),
])
def test_each_error_names_the_field_and_the_valid_values(check, expected):
    errors = claim_errors(claim(check))
    assert any(expected in e for e in errors), errors


@pytest.mark.parametrize("plot, expected", [
    ({"x": "model.depth", "metric": "test/acc", "goal": "up"}, "claim.plot.goal='up' is invalid; valid values: min, max"),
    ({"x": "model.depth", "colour": "red"}, "claim.plot has unknown field(s) colour; valid fields: x, metric, line"),
    ({"where": "norm=batch"}, "claim.plot.where must be a mapping"),
    ("test/acc", "claim.plot must be a mapping"),
])
def test_a_bad_plot_block_names_the_field(plot, expected):
    errors = claim_errors(claim({}, plot=plot))
    assert any(expected in e for e in errors), errors
    assert claim_errors(claim({}, plot={"x": "data.batch_size", "metric": "test/acc", "line": "norm",
                                        "where": {"lr_grid": "scaled"}, "tune": "optimizer.lr", "goal": "max"})) == []


INTERACTION = {"factor": "norm", "treatment": "batch", "baseline": "layer"}
EVENT = {"metric": "train/loss", "goal": "max", "event": {"diverged": True, "above": 2.302585}}


def test_the_new_kinds_parse_and_validate():
    assert claim_errors(claim({"interaction": INTERACTION}, {**EVENT, "treatment": ["adam", "nadam"]},
                              {"event": "diverged", "metric": None}, {"event": {"below": 0.2}, "metric": "val/acc"})) == []
    spec = parse_check(dict(CHECK, interaction=INTERACTION))
    assert spec.kind == "interaction" and spec.interaction.factor == "norm" and spec.interaction.baseline == "layer"
    spec = parse_check(dict(CHECK, **EVENT, treatment=["0.3", 1.0], baseline="0.01"))
    assert spec.kind == "events" and spec.event.diverged and spec.event.above == 2.302585
    assert spec.treatment == (0.3, 1) and spec.baseline == 0.01 and not spec.problems
    assert parse_check(dict(CHECK, event="diverged", metric=None)).problems == ()
    assert parse_check(CHECK).kind == "plain" and parse_check(dict(CHECK, tune="optimizer.lr")).kind == "tune"


@pytest.mark.parametrize("check, expected", [
    ({"interaction": "norm"}, "claim.checks[0].interaction='norm' is invalid: it must be a mapping {factor, treatment, baseline}"),
    ({"interaction": {"factor": "norm", "treatment": "batch"}}, "claim.checks[0].interaction.baseline is missing"),
    ({"interaction": dict(INTERACTION, level="x")}, "claim.checks[0].interaction has unknown field(s) level; valid fields: factor, treatment, baseline"),
    ({"interaction": dict(INTERACTION, factor="optimizer")}, "claim.checks[0].interaction.factor='optimizer' is the check's own factor"),
    ({"interaction": dict(INTERACTION, baseline="batch")}, "claim.checks[0].interaction.treatment and interaction.baseline share the level(s) batch"),
    ({"interaction": INTERACTION, "tune": "optimizer.lr"}, "claim.checks[0].interaction cannot be combined with tune"),
    ({"interaction": INTERACTION, "where": {"norm": "batch"}}, "claim.checks[0].interaction.factor='norm' is fixed by where"),
    ({"interaction": INTERACTION, "on_diverged": "worst", "metric": "grad/x"}, "claim.checks[0].on_diverged=worst needs to know which way 'grad/x' is better: add metric_goal: min or max"),
    ({"event": "crashed"}, "claim.checks[0].event='crashed' is invalid; valid values: diverged, or a mapping {diverged, above, below}"),
    ({"event": {"above": "high"}}, "claim.checks[0].event.above='high' is invalid: it must be a number"),
    ({"event": {"above": 1, "below": 0}}, "claim.checks[0].event.above and event.below cannot both be given"),
    ({"event": {}}, "claim.checks[0].event names no event: give diverged: true, above: <x> or below: <x>"),
    ({"event": {"diverged": "yes"}}, "claim.checks[0].event.diverged='yes' is invalid; valid values: true, false"),
    ({"event": {"limit": 1}}, "claim.checks[0].event has unknown field(s) limit; valid fields: diverged, above, below"),
    ({"event": "diverged", "test": "equivalence", "margin": 0.1}, "claim.checks[0].test='equivalence' does not apply to an event check; valid values: superiority"),
    ({"event": "diverged", "margin": 0.1}, "claim.checks[0].margin does not apply to an event check"),
    ({"event": "diverged", "on_diverged": "exclude"}, "claim.checks[0].on_diverged does not apply: with event.diverged true, a diverged run is the event"),
    ({"event": {"above": 1.0}, "metric": None}, "claim.checks[0].metric is missing: event.above/below is a threshold on the check's metric"),
    ({"event": "diverged", "spread": "optimizer.lr"}, "claim.checks[0].event cannot be combined with spread"),
    ({"treatment": []}, "claim.checks[0].treatment=[] is invalid: name a level, or a non-empty list of levels to pool"),
    ({"treatment": ["adam", "sgd"]}, "claim.checks[0].treatment and baseline share the level(s) sgd: a run cannot be on both sides"),
    ({"treatment": {"a": 1}}, "claim.checks[0].treatment={'a': 1} is invalid: name a level, or a list of levels to pool"),
])
def test_each_new_error_names_the_field_and_the_valid_values(check, expected):
    errors = claim_errors(claim(check))
    assert any(expected in e for e in errors), errors
    assert parse_check(dict(CHECK, **check)).problems  # and the report says why it cannot judge the check


def test_a_clause_no_check_names_needs_a_reason():
    clauses = ({"name": "a", "text": "A"}, {"name": "b", "text": "B"})
    errors = claim_errors(claim({}, clauses=clauses))
    assert errors == ["claim.clauses[1] (b) is tested by no check: add a check with clause: b, or not_tested: <why>"]
    ok = ({"name": "a", "text": "A"}, {"name": "b", "text": "B", "not_tested": "needs a GPU"})
    assert claim_errors(claim({}, clauses=ok)) == []


def test_with_clauses_every_check_names_one():
    errors = claim_errors(claim({"clause": None}))
    assert "claim.checks[0].clause is missing; valid values: a" in errors


def test_missing_parts():
    assert "claim.statement is missing" in claim_errors({"checks": [CHECK]})[0]
    assert any("claim.checks is empty" in e for e in claim_errors({"statement": "s"}))
    assert any("claim.checks[0].baseline is missing" in e for e in claim_errors(claim({"baseline": None})))


def test_defaults():
    spec = parse_check(dict(CHECK, tune="optimizer.lr"))
    assert (spec.test, spec.margin, spec.select_on, spec.on_diverged, spec.fresh_seeds) == \
        ("superiority", None, "val/acc", "worst", None)
    assert parse_check(dict(CHECK, spread="optimizer.lr")).on_diverged == "worst"
    assert parse_check(CHECK).on_diverged == "exclude" and parse_check(CHECK).select_on is None
    assert default_select_on("test/loss") == "val/loss" and default_select_on("acc") == "acc"
    assert parse_check(dict(CHECK, treatment="8")).treatment == 8
    broken = parse_check({"metric": "train/loss", "test": "x"})
    assert "the check's goal is missing" in broken.problems
    assert "the check's test='x' is invalid; valid values: superiority, noninferiority, equivalence" in broken.problems


def test_parse_claim_keeps_clauses_and_scope():
    spec, errors = parse_claim(claim({}, clauses=({"name": "a", "text": "A"}, {"name": "b", "not_tested": "why"}),
                                     scope={"hardware": "2-core CPU"}))
    assert errors == []
    assert [c.name for c in spec.clauses] == ["a", "b"] and spec.clauses[1].not_tested == "why"
    assert spec.scope == {"hardware": "2-core CPU"} and spec.checks[0].clause == "a"


@pytest.mark.parametrize("path", sorted((REPO / "conf" / "experiment").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_experiment_claim_is_valid(path):
    spec = yaml.safe_load(path.read_text())
    assert claim_errors(spec["claim"]) == []
    assert spec["claim"]["clauses"] and spec["claim"]["scope"]
    sweeper = spec["hydra"]["sweeper"]
    for grid in [sweeper.get("params") or {}, *(sweeper.get("grids") or [])]:
        assert "seed" not in grid and "seeds" not in grid, "the sweeper adds the seeds"


def test_the_schema_imports_no_statistics_library():
    code = ("import sys\nfrom ablate.validate import claim_errors\nclaim_errors({'statement': 's', 'checks': []})\n"
            "bad = [m for m in ('torch', 'scipy', 'statsmodels', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr


def test_one_parser_one_rule_set_for_the_config_check_and_the_report():
    """What the config check prints for a check is what the report gives as the reason it cannot
    judge that check: both come from the same rules (spec.rules.check_errors)."""
    raw = claim({"goal": "up", "on_diverged": "sometimes", "colour": "red"})
    spec, errors = parse_claim(raw)
    assert errors == claim_errors(raw)
    assert "claim.checks[0].goal='up' is invalid; valid values: min, max" in errors
    assert "claim.checks[0] has unknown field(s) colour; valid fields:" in " ".join(errors)
    problems = spec.checks[0].problems
    assert "the check's goal='up' is invalid; valid values: min, max" in problems
    assert any(p.startswith("the check has unknown field(s) colour") for p in problems)
    assert "the check's on_diverged='sometimes' is invalid; valid values: worst, chance, exclude" in problems
