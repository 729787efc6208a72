"""How to read a report: the guide at the end of every report, one bullet per idea."""

from __future__ import annotations

from ablate.report.judge import power, robust, stats
from ablate.report.judge.sequential import look_alphas
from ablate.report.present.render import Bullets, Code, Heading, badge


def reading_guide() -> list:
    a = stats.ALPHA
    return [Heading(2, "How to read this report"), Bullets([
        ["Each check compares the seeds of a treatment with those of a baseline. Δ is the difference oriented so "
         "that positive is the way the claim says (treatment − baseline when higher is better, baseline − "
         "treatment when lower is better), with its two-sided Welch confidence interval (unequal variances) at "
         "the check's α."],
        [f"**One error rate**: every decision is a one-sided test at α/2 = {a / 2:g} per look: an interval "
         f"decides by one bound of a two-sided (1 − α) = {1 - a:.0%} interval, an event check by a one-sided "
         f"Fisher test at α/2. Every p printed (**p for**, **p against**) is twice a one-sided p, so it decides "
         f"exactly when it is below α. The rates are measured, not assumed: ", Code("python -m ablate.calibrate"),
         " (docs/calibration.md) simulates every check kind through this judging code."],
        ["Tests: **superiority** (the treatment is better), **non-inferiority** (it is not worse by more than "
         "the margin δ), **equivalence** (the two differ by less than δ). δ is in the metric's units (after "
         "log10 when the check transforms it)."],
        [badge(stats.SUPPORTED), ": the interval lies above 0 (superiority), above −δ (non-inferiority), or "
         "inside (−δ, δ) (equivalence). Exactly then **p for** < the check's α (the Welch p against that "
         "bound; for equivalence twice the TOST p)."],
        [badge(stats.NOT_SUPPORTED), f": the interval lies wholly on the wrong side (below 0, below −δ, or "
         f"outside (−δ, δ)) **and** Holm's correction over the claim's checks keeps it: the Holm-adjusted "
         f"**p against** (each raw p scaled by α / its look's α) is < {a:g}. The measurement contradicts the claim."],
        [badge("no effect within ±δ"), ": superiority checks with a margin only: the interval lies inside "
         "(−δ, δ), so any effect is smaller than δ, **and** the same Holm correction keeps it (its p is "
         "twice the TOST p). A finding in its own right, and it counts as not supported for the claim."],
        [badge(stats.INCONCLUSIVE), ": none of these at this budget (or a side has fewer than 2 ok seeds, or "
         "the check could not be evaluated; the reason is given). A null here reads \"not shown at "
         "budget=…\", with the smallest effect the seeds could have detected: it is not evidence against "
         "the claim."],
        ["**Robustness** (each check's *robustness* line, and ", Code("borderline"), " in verdict.json): how far "
         "the interval bound that decides sits past its threshold, in units of the interval's half-width, and "
         "whether the verdict survives leaving out any one seed of each side (each cell for an interaction; "
         "sides need 3 seeds to leave one out). An event check has no interval: its room is the normal "
         "quantile of its deciding one-sided p over that of α/2, less 1 (the room an interval with that p "
         "would have), the report says how many runs would have to change outcome to undo it, and one seed "
         "out means one run left out or one run's outcome changed. A verdict decided by less than "
         f"{robust.BORDERLINE_ROOM:g} half-widths, or undone by one seed (for an event check: only undone by "
         "one run), is marked **borderline**: another "
         "machine's floating point, or one more seed, may decide it differently."],
        [badge(stats.NOT_TESTED), ": a part of the statement no check measures (the reason is given); "
         "a claim is never supported on the strength of its tested parts alone without listing these."],
        [badge(stats.NOT_APPLICABLE), ": on a model or data of your own, a part of the statement whose checks "
         "cannot run there (the model takes no `norm`, the check compares ablate's own families, ...; the reason "
         "is given). It is left out of the claim's verdict, which is then about the parts that apply (docs/models.md)."],
        [badge(stats.NOT_INFORMATIVE), ": a clause that a failed **control** guards. A control is a condition "
         "under which the claim's checks mean something (the arm the claim favours learns the task above chance; "
         "the deep plain net is deep enough to degrade); it holds when the one-sided "
         f"{100 * (1 - a / 2):g}% bound of the mean of its runs clears its threshold, and the report's Controls "
         "table gives its numbers. When one fails the design did not reach its effect at this budget, so the "
         "clause's checks cannot speak, whatever they said (shown beside it). Unlike inconclusive, more seeds "
         "will not help: a larger budget or another design will. It combines like inconclusive; a claim that "
         "would be inconclusive with such a clause among its own is not informative too."],
        ["A clause is supported when all its checks are, not supported when any is not supported or shows "
         "no effect, else inconclusive; the claim combines its tested clauses the same way "
         "(intersection-union: supporting needs no multiplicity correction)."],
        ["**Sequential seeds**: a sweep starts every cell at budget.seeds seeds and, while a check is "
         "undecided, adds seeds (about ×1.6 a look, up to budget.max_seeds) only to the cells that check "
         f"reads. α = {a:g} is spent over a check's planned looks by the Lan–DeMets O'Brien–Fleming rule: "
         "strict early looks, most of α at the last (looks 3 → 5 → 8 judge at α = "
         f"{', '.join(f'{x:.2g}' for x in look_alphas(a, (3, 5, 8)))}), so "
         "that over all looks each direction errs at most α/2; the verdict is the one of the first look that "
         "decided, and the check says which look and how many seeds per side."],
        ["**Power**: *detectable |Δ|* is the smallest difference past the check's threshold (for equivalence: "
         "the smallest δ) its seeds would find with 80% probability by the test the check runs: one-sided at "
         "α/2 with Welch's degrees of freedom (equivalence: two one-sided tests). It rests on the sd estimated "
         f"from those seeds, taken at its {power.SD_CONFIDENCE:.0%} upper confidence bound, since a plug-in sd "
         "from 3 seeds overstates power; an inconclusive check also says about how many seeds per side its "
         "margin (or the observed |Δ|) would need, on the same footing."],
        ["With ", Code("tune"), ", each side is set to its own best value of the tuned key, chosen on ",
         Code("select_on"), " (validation data) over the selection seeds, and judged on the check's metric "
         "(test data) with fresh seeds that did not take part in the choice, when the budget's max_seeds "
         "allows. Otherwise the same seeds choose and judge, and the check is ", badge(stats.EXPLORATORY),
         ": never supported or contradicted, and it keeps its clause from being supported. Choosing on the "
         "judging seeds is biased, and not evenly: a side with a flat curve gains more from its seeds' luck "
         "than a side with a sharp one (the calibration measures the false \"supported\" rate it would give)."],
        ["With ", Code("spread"), ", each seed contributes one number: the sd of the metric over the key's "
         "grid, or with ", Code("statistic: width"), " the width in decades of the range of the key where "
         "the metric stays within ", Code("within"), " of that seed's best (a width that reaches the end of "
         "the grid is censored: the true width is at least that)."],
        ["With ", Code("interaction"), ", Δ is a difference in differences: the effect of the check's factor "
         "(treatment − baseline) under one level of a second factor minus its effect under another, from the "
         "four cells' seed means, with HC3's standard error (each cell its own variance, s²/(n − 1) per cell "
         "mean) and t with Satterthwaite's degrees of freedom; it is decided like any other interval, "
         "and every cell needs at least 2 ok seeds. The treatment and baseline columns then show each level's "
         "effect."],
        ["With ", Code("event"), ", the check counts the runs per side where the event happened (diverged, "
         "or the metric at or past a threshold) and tests the two fractions with Fisher's exact test, "
         "one-sided at α/2 in each direction: supported when **p for** (twice the one-sided p) < the look's "
         "α, not supported when **p against** < α and Holm keeps it. There is no interval and no detectable effect; the power line "
         "says instead the smallest p the run counts could reach at all. A side may pool several levels "
         "(", Code("treatment: [0.3, 1, 3]"), ")."],
        ["A metric written ", Code("a - b"), " (or ", Code("a + b"), ") is computed per run from two recorded "
         "metrics (e.g. ", Code("train_eval/acc - test/acc"), ", the generalisation gap) and is missing when "
         "either is."],
        ["Hedges' g is Δ in pooled standard deviations, small-sample corrected (|g| ≈ 0.2 small, 0.8 large)."],
        ["Failed runs never enter statistics; diverged runs are left out, or with ", Code("on_diverged"),
         " scored as the worst value of the check's ok runs (", Code("worst"), ", the default for tune and "
         "spread checks, where leaving them out would hide sensitivity) or as chance (", Code("chance"),
         "); each check counts them per side."],
    ])]
