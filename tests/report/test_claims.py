"""ablate.report.claims: the claim schema's defaults and every error the config check reports."""

from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from ablate.report.claims import claim_errors, default_select_on, parse_check, parse_claim
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
    assert any("missing" in p for p in broken.problems) and any("valid: superiority" in p for p in broken.problems)


def test_parse_claim_keeps_clauses_and_scope():
    spec = parse_claim(claim({}, clauses=({"name": "a", "text": "A"}, {"name": "b", "not_tested": "why"}),
                             scope={"hardware": "2-core CPU"}))
    assert [c.name for c in spec.clauses] == ["a", "b"] and spec.clauses[1].not_tested == "why"
    assert spec.scope == {"hardware": "2-core CPU"} and spec.checks[0].clause == "a"


@pytest.mark.parametrize("path", sorted((REPO / "conf" / "experiment").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_experiment_claim_is_valid(path):
    spec = yaml.safe_load(path.read_text())
    assert claim_errors(spec["claim"]) == []
    assert spec["claim"]["clauses"] and spec["claim"]["scope"]
    assert "seed" not in spec["hydra"]["sweeper"]["params"], "the sweeper adds the seeds"


def test_the_schema_imports_no_statistics_library():
    code = ("import sys\nfrom ablate.validate import claim_errors\nclaim_errors({'statement': 's', 'checks': []})\n"
            "bad = [m for m in ('torch', 'scipy', 'statsmodels', 'pandas', 'matplotlib') if m in sys.modules]\n"
            "assert not bad, bad\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
