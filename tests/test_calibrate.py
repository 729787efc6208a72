"""ablate.calibrate: every rate the engine states holds when synthetic seeds go through the same
judging function the sweeper and the report use (fixed seeds, so each measurement is exact)."""

from __future__ import annotations

import pytest

from ablate import calibrate
from ablate.report.judge import stats
from ablate.results import validate_record

SIMS = 300  # per scenario here; the command's default is larger
BY_NAME = {s.name: s for s in calibrate.SCENARIOS}


def _scenario(fragment: str) -> calibrate.Scenario:
    (found,) = [s for name, s in BY_NAME.items() if fragment in name]
    return found


def test_records_are_the_shape_a_sweep_writes():
    validate_record(calibrate.record("r", {"model.a": True, "optimizer.lr": 0.1}, 2, {"m": 1.0},
                                     status="diverged", budget=calibrate.SEQUENTIAL))


@pytest.mark.parametrize("fragment", [
    "equal arms", "looks 3 → 5 → 8", "non-inferiority", "equivalence, Δ = δ", "3 checks, A/A", "events",
    "fresh judging seeds", "no effect at claim level, Δ = δ, 3", "no effect at claim level, Δ = δ, 5",
    "same seeds choose", "10× noisier",
])
def test_false_positive_rate_is_at_most_nominal(fragment):
    scenario = _scenario(fragment)
    rate = calibrate.measure(scenario, SIMS)
    assert scenario.bound == calibrate.AT_MOST and scenario.nominal == stats.ALPHA / 2
    assert rate.holds, f"{scenario.name}: {rate.hits}/{rate.sims}, 95% interval [{rate.low:.3f}, {rate.high:.3f}]"


@pytest.mark.parametrize("fragment", [*(f"detectable effect, {n} vs {n}" for n in (3, 5)), "seeds needed, equivalence"])
def test_power_at_the_printed_figures_is_about_80_percent(fragment):
    rate = calibrate.measure(_scenario(fragment), SIMS)
    assert rate.holds, f"{rate.hits}/{rate.sims}, 95% interval [{rate.low:.3f}, {rate.high:.3f}]"


def test_a_tuned_check_without_fresh_seeds_is_exploratory_never_supported():
    rate = calibrate.measure(_scenario("same seeds choose"), 100)
    assert rate.hits == 0


def test_a_rate_that_is_off_is_flagged():
    """The check itself fails when a scenario errs more than it says (a scenario whose rate is ~100%)."""
    always = calibrate.Scenario("always", lambda rng: True, 0.025, sims=20)
    never = calibrate.Scenario("never", lambda rng: False, 0.8, calibrate.AT_LEAST, sims=20)
    assert not calibrate.measure(always).holds and not calibrate.measure(never).holds


def test_command_prints_the_table(capsys):
    code = calibrate.main(["--only", "equal arms", "--sims", "50", "--describe"])
    out = capsys.readouterr().out
    assert "| scenario | nominal | measured [95% interval] | simulations |" in out
    assert "| superiority, equal arms, 3 vs 3 | ≤ 2.5% |" in out and "| 50 |" in out
    assert "3 vs 3 seeds of equal arms" in out
    assert code == 0
