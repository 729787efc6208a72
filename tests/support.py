"""Helpers shared by the test modules (``from tests.support import compose, group, PYTHON, REPO``).
Fixtures live in ``tests/conftest.py``."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PYTHON = sys.executable


def compose(overrides=(), run_dir: str | Path = ".") -> "DictConfig":  # noqa: F821
    """The primary config (pkg://ablate.conf) with ``overrides`` and ``run_dir`` set."""
    from hydra import compose as hydra_compose, initialize_config_module

    with initialize_config_module("ablate.conf", version_base="1.3"):
        return hydra_compose("config", overrides=[*overrides, f"run_dir={run_dir}"])


@functools.lru_cache(maxsize=None)
def group(name: str, choice: str) -> "DictConfig":  # noqa: F821
    """The node ``conf/<name>/<choice>.yaml`` composes to (``group("optimizer", "adam")``), composed once."""
    return compose([f"{name}={choice}"])[name]


def choices(name: str) -> tuple[str, ...]:
    """The shipped choices of a config group (``choices("scheduler")``: none, step, cosine, ...)."""
    return tuple(sorted(p.stem for p in (REPO / "conf" / name).glob("*.yaml")))


def experiment_cells(spec: dict, budget: str = "quick") -> list[dict[str, str]]:
    """The cells of an experiment config (its parsed YAML), as the ablate sweeper expands them at
    ``budget`` (``conf/budget/<budget>.yaml``): ``hydra.sweeper.params`` x each of
    ``hydra.sweeper.grids``, with the experiment's top-level labels (``arm: grid``) filled in where a
    cell does not set them."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from hydra_plugins.ablate_sweeper.ablate_sweeper import job_dict, union

    from omegaconf import OmegaConf

    import ablate  # noqa: F401  (registers the ${scale:...} resolver)

    # the sweeper reads its params resolved: ${scale:${budget.max_epochs},0.5} is a number by then
    rest = {k: v for k, v in spec.items() if k not in ("hydra", "defaults", "claim")}   # ${fixed_steps} and co
    node = OmegaConf.create({**rest, "budget": OmegaConf.load(REPO / "conf" / "budget" / f"{budget}.yaml"),
                             "sweeper": spec["hydra"]["sweeper"]})
    sweeper = OmegaConf.to_container(node, resolve=True)["sweeper"]
    params = [f"{k}={v}" for k, v in (sweeper.get("params") or {}).items()]
    sweeps = [[*params, *(f"{k}={v}" for k, v in g.items())] for g in sweeper.get("grids") or [{}]]
    labels = {k: str(v) for k, v in spec.items()
              if k not in ("experiment", "defaults") and isinstance(v, (str, int, float)) and not isinstance(v, bool)}
    return [{**labels, **job_dict(job)} for job in union(sweeps, OverridesParser.create())]


def subprocess_env(**extra: str) -> dict[str, str]:
    """The environment of a test's ``python -m ablate`` subprocess: one thread (the models are tiny,
    and two spinning OpenMP threads crawl on a busy 2-core machine), W&B offline, unbuffered output,
    Hydra's short errors; ``extra`` adds or replaces variables (a value of ``""`` removes one)."""
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("HYDRA_FULL_ERROR", "ABLATE_FAULT_TRIGGER")}
    env.update({"OMP_NUM_THREADS": "1", "WANDB_MODE": "offline", "WANDB_SILENT": "true",
                "PYTHONUNBUFFERED": "1"})
    for key, value in extra.items():
        if value == "":
            env.pop(key, None)
        else:
            env[key] = value
    return env


def run_ablate(args, cwd, *, module: str = "ablate", timeout: float = 600, env: dict | None = None,
               **extra_env: str) -> "subprocess.CompletedProcess[str]":  # noqa: F821
    """``python -m <module> *args`` in ``cwd`` with :func:`subprocess_env`; output captured as text."""
    import subprocess

    return subprocess.run([PYTHON, "-m", module, *map(str, args)], cwd=cwd, env=env or subprocess_env(**extra_env),
                          capture_output=True, text=True, timeout=timeout)


# ---------------------------------------------------------------------------------------------
# An experiment's smoke run and what its report must show
# ---------------------------------------------------------------------------------------------

def _verdicts() -> tuple[str, ...]:
    """Every verdict as a report prints it in bold (``no effect within ±δ`` names its δ), from the one
    list the judge keeps, and a clause's "not informative at this budget" (a failed control); not tested last."""
    from ablate.report.judge import stats

    return tuple("**no effect" if v == stats.NO_EFFECT else f"**{v}**"
                 for v in (*stats.VERDICTS, stats.NOT_INFORMATIVE, stats.NOT_TESTED))


VERDICTS = _verdicts()

# The experiments the catalogue test runs (``python -m ablate.catalogue --only ...``, the session fixture
# ``smoke_catalogue``); tests/test_experiments.py checks their sweeps there instead of running them again.
CATALOGUED = ("attention_vs_recurrence", "linear_collapse")


def experiment_spec(name: str) -> dict:
    """``conf/experiment/<name>.yaml``, parsed (not composed)."""
    import yaml

    return yaml.safe_load((REPO / "conf" / "experiment" / f"{name}.yaml").read_text())


def _section(text: str, start: str, end: str) -> str:
    assert start in text, f"{start!r} is missing from the report"
    return text.split(start, 1)[1].split(end, 1)[0]


def check_report(sweep: Path, claim: dict) -> str:
    """What every experiment's report must show, read from its sweep folder against the claim it judges
    (the experiment config's ``claim``); returns report.md.

    - an overall verdict;
    - **Clauses**: a line per clause that starts with its verdict (**not tested** where the claim says so);
    - **Scope**: each of the claim's scope entries, word for word;
    - the checks table: every column, one row per check in the claim's order (its number, name and verdict);
    - figures (PNGs, not empty), inlined in report.html; runs.csv."""
    import itertools

    report = (sweep / "report.md").read_text()
    assert "verdict" in report.lower()
    assert any(v in report for v in VERDICTS[:-1]), "no overall verdict"
    clauses = _section(report, "**Clauses**", "**Scope**")
    for clause in claim["clauses"]:
        line = next((ln for ln in clauses.splitlines() if f"(`{clause['name']}`)" in ln), None)
        assert line is not None, f"clause {clause['name']} is missing from the report"
        assert line.lstrip("- ").startswith(VERDICTS), line
        if clause.get("not_tested"):
            assert "**not tested**" in line, line
    scope = _section(report, "**Scope**", "| # | check")
    for key, text in claim["scope"].items():
        assert f"- {key}: {text}" in scope, f"scope {key} is missing"
    lines = report.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("| # | check"))
    header = lines[start]
    assert all(c in header for c in ("| test |", "p for", "p against (raw / Holm)", "detectable", "seeds per side"))
    rows = list(itertools.takewhile(lambda ln: ln.startswith("|"), lines[start + 2:]))
    assert len(rows) == len(claim["checks"]), "one row per check"
    for number, (check, row) in enumerate(zip(claim["checks"], rows), 1):
        assert row.startswith(f"| {number} | {check['name']} |") and any(v in row for v in VERDICTS), row
    figures = sorted((sweep / "figures").glob("*.png"))
    assert figures and all(f.stat().st_size > 1000 for f in figures), figures
    assert "data:image/png;base64," in (sweep / "report.html").read_text()
    assert (sweep / "runs.csv").is_file()
    return report


def check_figure(sweep: Path, report: str, name: str) -> None:
    """The figure ``figures/<name>`` was drawn and the report shows it."""
    assert (sweep / "figures" / name).is_file(), sorted(p.name for p in (sweep / "figures").iterdir())
    assert f"figures/{name}" in report, name
