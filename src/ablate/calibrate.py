"""The verdict engine's own calibration: ``python -m ablate.calibrate``.

Each scenario simulates synthetic seed values (NumPy, fixed seeds), writes them as run records of
the shape a sweep writes (``ablate.results``), and judges them with the same function the sweeper
and the report call (:func:`ablate.report.judge.claim.judge_claim`). It counts how often the
verdict it watches comes out, and prints that rate with its exact (Clopper–Pearson) binomial 95%
interval next to the rate the reports state: a false positive at most its nominal rate, power at
least its nominal rate. The table in ``docs/calibration.md`` is this command's output.

Two rows replay the sequential rule in NumPy instead (:func:`sequential_replay`, which the tests
check decision for decision against :func:`judge_claim`): ~1000× faster, so that the sequential A/A
rate, which sits a few tenths of a point under 2.5%, is measured to its second decimal.

    python -m ablate.calibrate                 # every scenario, the default number of simulations
    python -m ablate.calibrate --sims 5000     # more simulations each (minutes)
    python -m ablate.calibrate --only power    # the scenarios whose name contains "power"
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np
from scipy import special
from scipy import stats as st

from ablate.report.judge import robust, stats
from ablate.report.judge.claim import judge_claim
from ablate.report.judge.sequential import look_alphas, schedule
from ablate.report.spec.claim import EQUIVALENCE, NONINFERIORITY

AT_MOST, AT_LEAST = "≤", "≥"
NOMINAL = stats.ALPHA / 2   # every decision errs one way at most α/2 = 2.5% (the reading guide's rate)
POWER_FLOOR = 0.78          # power at the printed detectable effect: at least this (nominal 80%)
SEQUENTIAL = {"seeds": 3, "max_seeds": 8}  # budget=quick's looks 3 → 5 → 8


# ---------------------------------------------------------------------------------------------
# Records: the shape a sweep writes (as tests/report/records.py makes them), only what judging reads
# ---------------------------------------------------------------------------------------------


def _text(value: Any) -> str:
    return ("true" if value else "false") if isinstance(value, bool) else str(value)


def record(run_id: str, factors: dict[str, Any], seed: int, metrics: dict[str, float], *,
           status: str = "ok", budget: dict | None = None) -> dict[str, Any]:
    """A run record: ``factors`` (dotted keys) in the resolved config and the overrides, like a Hydra
    multirun job's; ``budget`` (``{"seeds": 3, "max_seeds": 8}``) is the seed plan the judge replays."""
    config: dict[str, Any] = {"seed": seed}
    for key, value in factors.items():
        node = config
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value
    if budget is not None:
        config["budget"] = dict(budget)
    overrides = {k: _text(v) for k, v in factors.items()} | {"seed": str(seed)}
    return {"schema": 1, "run_id": run_id, "status": status, "error": None if status == "ok" else "nan loss",
            "experiment": "calibration", "seed": seed, "overrides": overrides, "config": config, "claim": None,
            "metrics": dict(metrics), "history": [], "probes": {}, "params": 0, "wall_time_s": 0.0,
            "samples_per_s": 0.0, "epochs_completed": 0, "batch_size": {"per_rank": 1, "world_size": 1, "effective": 1},
            "versions": {}, "started_at": "", "finished_at": "", "num_classes": 10}


def check(**fields: Any) -> dict[str, Any]:
    """A check of ``model.a`` true (treatment) vs false (baseline), higher ``m`` better, ``fields`` overriding."""
    return {"name": "check", "metric": "m", "goal": "max", "factor": "model.a", "treatment": True,
            "baseline": False} | fields


def claim(*checks: dict[str, Any]) -> dict[str, Any]:
    return {"name": "calibration", "statement": "", "checks": [dict(c, name=f"check {i}") for i, c in enumerate(checks)]}


def two_arms(rng: np.random.Generator, n: int, shift: float | Sequence[float] = 0.0, *,
             metrics: Sequence[str] = ("m",), budget: dict | None = None) -> list[dict]:
    """Seeds ``0 .. n-1`` of treatment (mean ``shift``, one per metric) and baseline (mean 0), sd 1,
    independent across runs and metrics."""
    shifts = np.broadcast_to(np.asarray(shift, dtype=float), (len(metrics),))
    out = []
    for seed in range(n):
        for arm, mean in ((True, shifts), (False, np.zeros(len(metrics)))):
            values = mean + rng.standard_normal(len(metrics))
            out.append(record(f"{_text(arm)}-{seed}", {"model.a": arm}, seed,
                              {m: float(v) for m, v in zip(metrics, values)}, budget=budget))
    return out


def verdict(records: list[dict], *checks: dict[str, Any]) -> str:
    result = judge_claim(records, claim(*checks))
    problems = [p for c in result.checks for p in c.spec.problems]
    if problems:  # a scenario that misspells its check would measure nothing
        raise ValueError("; ".join(problems))
    return result.verdict


# ---------------------------------------------------------------------------------------------
# Scenarios: one simulated experiment each, True when the watched verdict comes out
# ---------------------------------------------------------------------------------------------


def equal_arms(rng: np.random.Generator) -> bool:
    """Superiority, 3 vs 3 seeds of equal arms, one look: a false "supported"."""
    return verdict(two_arms(rng, 3), check()) == stats.SUPPORTED


def sequential_aa(rng: np.random.Generator) -> bool:
    """Superiority under A/A with the looks 3 → 5 → 8 of budget=quick: "supported" at any look."""
    return verdict(two_arms(rng, 8, budget=SEQUENTIAL), check()) == stats.SUPPORTED


def noninferiority_at_margin(rng: np.random.Generator) -> bool:
    """Non-inferiority, δ = 1 sd, the treatment exactly δ worse, 5 vs 5 seeds: a false "supported"."""
    return verdict(two_arms(rng, 5, -1.0), check(test=NONINFERIORITY, margin=1.0)) == stats.SUPPORTED


def equivalence_at_margin(rng: np.random.Generator) -> bool:
    """Equivalence, δ = 1 sd, the arms exactly δ apart, 10 vs 10 seeds: a false "supported"."""
    return verdict(two_arms(rng, 10, 1.0), check(test=EQUIVALENCE, margin=1.0)) == stats.SUPPORTED


def no_effect_claim(checks: int) -> Callable[[np.random.Generator], bool]:
    def simulate(rng: np.random.Generator) -> bool:
        metrics = [f"m{i}" for i in range(checks)]
        specs = [check(metric=m, margin=1.0) for m in metrics]
        return verdict(two_arms(rng, 20, 1.0, metrics=metrics), *specs) == stats.NOT_SUPPORTED

    simulate.__doc__ = (f"A claim of {checks} superiority checks with δ = 1 sd, each true effect exactly δ, "
                        "20 seeds a side: the claim called \"not supported\"")
    return simulate


def holm_aa(rng: np.random.Generator) -> bool:
    """A claim of 3 superiority checks (no margin) under A/A, 5 seeds a side: "not supported"."""
    metrics = ["m0", "m1", "m2"]
    return verdict(two_arms(rng, 5, metrics=metrics), *[check(metric=m) for m in metrics]) == stats.NOT_SUPPORTED


LRS = (0.001, 0.003, 0.01, 0.03, 0.1)


def tuned(fresh: bool) -> Callable[[np.random.Generator], bool]:
    """Tune checks: both arms' best learning rate has mean 0, but the treatment's curve is flat (all
    five rates alike) and the baseline's sharp (every other rate 3 sd worse). A run's validation and
    test values share its seed noise (sd 1) plus their own (sd 0.5), so choosing on validation
    favours the flat arm on the choosing seeds."""
    budget = SEQUENTIAL if fresh else {"seeds": 3}

    def simulate(rng: np.random.Generator) -> bool:
        records = []
        for seed in range(budget.get("max_seeds", budget["seeds"])):
            for arm in (True, False):
                for i, lr in enumerate(LRS):
                    mean = 0.0 if arm or i == 2 else -3.0
                    z = rng.standard_normal()
                    val, test = mean + z + 0.5 * rng.standard_normal(2)
                    records.append(record(f"{_text(arm)}-{lr}-{seed}", {"model.a": arm, "optimizer.lr": lr}, seed,
                                          {"val": float(val), "m": float(test)}, budget=budget))
        return verdict(records, check(tune="optimizer.lr", select_on="val")) == stats.SUPPORTED

    simulate.__doc__ = (f"Tuned check, flat vs sharp learning-rate curves with the same best value, "
                        f"{'fresh judging seeds (3 choose; 3 → 5 judge)' if fresh else 'the 3 seeds that choose also judge'}: "
                        "a false \"supported\"")
    return simulate


def noisy_interaction(rng: np.random.Generator) -> bool:
    """Interaction, no interaction at all, 5 seeds a cell, one cell's sd 10× the others': a false "supported"."""
    records = []
    for seed in range(5):
        for a in (True, False):
            for b in (True, False):
                sd = 10.0 if a and b else 1.0
                records.append(record(f"{_text(a)}-{_text(b)}-{seed}", {"model.a": a, "model.b": b}, seed,
                                      {"m": float(sd * rng.standard_normal())}))
    inter = {"factor": "model.b", "treatment": True, "baseline": False}
    return verdict(records, check(interaction=inter)) == stats.SUPPORTED


def equal_events(rng: np.random.Generator) -> bool:
    """Event check (Fisher), 8 runs a side, each diverging with probability 0.3 on both: a false "supported"."""
    records = []
    for seed in range(8):
        for arm in (True, False):
            status = "diverged" if rng.random() < 0.3 else "ok"
            records.append(record(f"{_text(arm)}-{seed}", {"model.a": arm}, seed, {"m": 0.0}, status=status))
    return verdict(records, check(event="diverged")) == stats.SUPPORTED


def power_at_detectable(n: int) -> Callable[[np.random.Generator], bool]:
    def simulate(rng: np.random.Generator) -> bool:
        pilot = judge_claim(two_arms(rng, n), claim(check())).checks[0]
        if not np.isfinite(pilot.detectable):
            return False
        return verdict(two_arms(rng, n, pilot.detectable), check()) == stats.SUPPORTED

    simulate.__doc__ = (f"Power: a pilot of {n} vs {n} equal seeds prints its detectable effect; a fresh {n} vs {n} "
                        "experiment with that true effect is called \"supported\"")
    return simulate


def power_at_seeds_needed(rng: np.random.Generator) -> bool:
    """Power: a pilot of 5 vs 5 equal seeds prints the seeds per side its equivalence margin (δ = 1.5
    sd) would need; a fresh experiment of that many seeds a side, with equal arms, is called
    "supported" (inside (−δ, δ))"""
    spec = check(test=EQUIVALENCE, margin=1.5)
    needed = judge_claim(two_arms(rng, 5), claim(spec)).checks[0].seeds_needed
    if not needed:
        return False
    return verdict(two_arms(rng, needed), spec) == stats.SUPPORTED


# ---------------------------------------------------------------------------------------------
# A cross-check: the sequential rule replayed in NumPy, for rates too fine for judge_claim's speed
# ---------------------------------------------------------------------------------------------


def _welch(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row-wise Δ = mean(a) − mean(b), Welch's se and Satterthwaite's df."""
    va, vb = a.var(axis=1, ddof=1) / a.shape[1], b.var(axis=1, ddof=1) / b.shape[1]
    se = np.sqrt(va + vb)
    return a.mean(axis=1) - b.mean(axis=1), se, (va + vb) ** 2 / (va ** 2 / (a.shape[1] - 1) + vb ** 2 / (b.shape[1] - 1))


def _bounds(a: np.ndarray, b: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    diff, se, df = _welch(a, b)
    half = special.stdtrit(df, 1 - alpha / 2) * se
    return diff - half, diff + half


def sequential_replay(treatment: np.ndarray, baseline: np.ndarray, seeds: int = SEQUENTIAL["seeds"],
                      max_seeds: int = SEQUENTIAL["max_seeds"], alpha: float = stats.ALPHA) -> np.ndarray:
    """Which rows a superiority check (no margin, higher better) calls "supported", replayed in NumPy:
    ``treatment`` and ``baseline`` are (experiments, max_seeds) seed values. The engine's rule
    (:mod:`ablate.report.judge.claim`) for one check: look k reads seeds 0 .. n_k − 1 (n_k from
    :func:`ablate.report.judge.sequential.schedule`), its Welch interval at the look's alpha
    (:func:`~ablate.report.judge.sequential.look_alphas`) supports above 0 and contradicts below
    0; a decision ends the check unless it is borderline (room below
    :data:`~ablate.report.judge.robust.BORDERLINE_ROOM`, or one seed out of either side undoes it)
    with looks to go; the last look's decision stands. ``tests/test_calibrate.py`` checks it
    decision for decision against :func:`judge_claim`; it is ~1000× faster, so it can measure the
    sequential A/A rate to a few hundredths of a point."""
    sizes = schedule(seeds, max_seeds)
    alphas = look_alphas(alpha, sizes)
    rows = treatment.shape[0]
    open_, supported = np.ones(rows, bool), np.zeros(rows, bool)
    for k, (n, a_k) in enumerate(zip(sizes, alphas)):
        t, b = treatment[:, :n], baseline[:, :n]
        low, high = _bounds(t, b, a_k)
        last = k == len(sizes) - 1
        ups, downs = open_ & (low > 0), open_ & (high < 0)
        if not last:
            half = (high - low) / 2
            for decided, room, sign in ((ups, low / half, 1), (downs, -high / half, -1)):
                shaky = decided & (room < robust.BORDERLINE_ROOM)
                if n >= 3:  # one seed out of either side, where the decision has room
                    idx = np.flatnonzero(decided & ~shaky)
                    for side in (0, 1):
                        for i in range(n):
                            tt = np.delete(t[idx], i, axis=1) if side == 0 else t[idx]
                            bb = np.delete(b[idx], i, axis=1) if side == 1 else b[idx]
                            lo, hi = _bounds(tt, bb, a_k)
                            shaky[idx[~((lo > 0) if sign > 0 else (hi < 0))]] = True
                decided &= ~shaky  # borderline with looks to go: the next look decides
        supported |= ups
        open_ &= ~(ups | downs)
    return supported


def replayed_aa(sd_ratio: float) -> Callable[[np.random.Generator, int], int]:
    def batch(rng: np.random.Generator, sims: int) -> int:
        hits = 0
        for start in range(0, sims, 100_000):
            m = min(100_000, sims - start)
            t = sd_ratio * rng.standard_normal((m, SEQUENTIAL["max_seeds"]))
            hits += int(sequential_replay(t, rng.standard_normal((m, SEQUENTIAL["max_seeds"]))).sum())
        return hits

    batch.__doc__ = ("The engine's sequential rule for one superiority check (looks 3 → 5 → 8, O'Brien–Fleming "
                     "alphas, Welch intervals, borderline looks continuing) replayed in NumPy "
                     "(calibrate.sequential_replay, checked decision for decision against judge_claim in "
                     "tests/test_calibrate.py), under A/A"
                     + (f" with the treatment's sd {sd_ratio:g}× the baseline's" if sd_ratio != 1 else "")
                     + ": \"supported\" at any look")
    return batch


@dataclass(frozen=True)
class Scenario:
    name: str
    simulate: Callable[[np.random.Generator], bool] | None  # one experiment; None: ``batch`` runs them
    nominal: float
    bound: str = AT_MOST   # the measured rate should be at most (≤) or at least (≥) nominal
    sims: int = 1000       # the default number of simulated experiments
    batch: Callable[[np.random.Generator, int], int] | None = None  # (rng, sims) -> hits, all at once

    @property
    def description(self) -> str:
        return " ".join(((self.simulate or self.batch).__doc__ or "").split()).rstrip(".")


SCENARIOS = (
    Scenario("superiority, equal arms, 3 vs 3", equal_arms, NOMINAL),
    Scenario("superiority, A/A, looks 3 → 5 → 8", sequential_aa, NOMINAL, sims=10_000),
    Scenario("the same rule replayed in NumPy, A/A, 3 → 5 → 8", None, NOMINAL, sims=1_000_000, batch=replayed_aa(1.0)),
    Scenario("the same rule replayed in NumPy, A/A, 3 → 5 → 8, one sd 3×", None, NOMINAL, sims=1_000_000,
             batch=replayed_aa(3.0)),
    Scenario("non-inferiority, Δ = −δ, 5 vs 5", noninferiority_at_margin, NOMINAL),
    Scenario("equivalence, Δ = δ, 10 vs 10", equivalence_at_margin, NOMINAL),
    Scenario("no effect at claim level, Δ = δ, 3 checks", no_effect_claim(3), NOMINAL, sims=600),
    Scenario("no effect at claim level, Δ = δ, 5 checks", no_effect_claim(5), NOMINAL, sims=600),
    Scenario("Holm, 3 checks, A/A: claim not supported", holm_aa, NOMINAL, sims=600),
    Scenario("tuned, flat vs sharp, same seeds choose and judge", tuned(False), NOMINAL, sims=400),
    Scenario("tuned, flat vs sharp, fresh judging seeds", tuned(True), NOMINAL, sims=400),
    Scenario("interaction, one cell 10× noisier", noisy_interaction, NOMINAL),
    Scenario("events (Fisher), equal rates 0.3, 8 vs 8", equal_events, NOMINAL),
    Scenario("power at the printed detectable effect, 3 vs 3", power_at_detectable(3), stats.POWER, AT_LEAST, 600),
    Scenario("power at the printed detectable effect, 5 vs 5", power_at_detectable(5), stats.POWER, AT_LEAST, 600),
    Scenario("power at the printed seeds needed, equivalence", power_at_seeds_needed, stats.POWER, AT_LEAST, 400),
)


# ---------------------------------------------------------------------------------------------
# Running and printing
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rate:
    scenario: Scenario
    hits: int
    sims: int
    low: float
    high: float
    seconds: float

    @property
    def rate(self) -> float:
        return self.hits / self.sims

    @property
    def holds(self) -> bool:
        """Whether the measurement is consistent with the nominal rate: its 95% interval reaches it
        (≤: the interval's low end is at most nominal; ≥: its high end is at least the floor)."""
        if self.scenario.bound == AT_MOST:
            return self.low <= self.scenario.nominal
        return self.high >= POWER_FLOOR


def measure(scenario: Scenario, sims: int | None = None, seed: int = 0) -> Rate:
    """Simulate ``sims`` experiments of ``scenario`` (default: its own count) from a fixed seed."""
    sims = sims or scenario.sims
    rng = np.random.default_rng([seed, sum(map(ord, scenario.name))])
    start = time.perf_counter()
    if scenario.batch is not None:
        hits = scenario.batch(rng, sims)
    else:
        hits = sum(bool(scenario.simulate(rng)) for _ in range(sims))
    ci = st.binomtest(hits, sims).proportion_ci(0.95, method="exact")
    return Rate(scenario, hits, sims, float(ci.low), float(ci.high), time.perf_counter() - start)


def table(rates: Sequence[Rate]) -> str:
    """The Markdown table: scenario, nominal, measured rate with its 95% interval, simulations."""
    lines = ["| scenario | nominal | measured [95% interval] | simulations |", "|---|---|---|---|"]
    for r in rates:
        s = r.scenario
        f = ".2%" if r.high - r.low < 0.002 else ".1%"  # a precise rate gets its second decimal
        lines.append(f"| {s.name} | {s.bound} {s.nominal:.1%} | {r.rate:{f}} [{r.low:{f}}, {r.high:{f}}] "
                     f"{'' if r.holds else '(off)'} | {r.sims} |".replace("  |", " |"))
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ablate.calibrate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--sims", type=int, default=None, help="simulations per scenario (default: each one's own)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", default="", help="run only the scenarios whose name contains this")
    parser.add_argument("--describe", action="store_true", help="print each scenario's setup under the table")
    args = parser.parse_args(argv)
    chosen = [s for s in SCENARIOS if args.only.lower() in s.name.lower()]
    rates = []
    for s in chosen:
        rates.append(measure(s, args.sims, args.seed))
        print(f"{s.name}: {rates[-1].rate:.1%} ({rates[-1].seconds:.0f} s)", file=sys.stderr, flush=True)
    print(table(rates))
    if args.describe:
        print()
        for s in chosen:
            print(f"- **{s.name}**: {s.description}.")
    return 0 if all(r.holds for r in rates) else 1


if __name__ == "__main__":
    raise SystemExit(main())
