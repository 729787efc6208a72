"""The whole catalogue in one page: ``python -m ablate.catalogue [overrides ...] [--dir DIR] [--only a,b]``.

Runs every experiment of ``conf/experiment/`` (``python -m ablate +experiment=<name> <overrides>``,
each in its own process, its sweep in ``<DIR>/<name>``), then writes ``<DIR>/index.md`` and
``<DIR>/index.html``: one row per claim with its statement, a verdict badge per clause, the
report's headline figure as a thumbnail linking to the full report, a summary of the verdicts, and
the versions and hardware. ``DIR`` defaults to ``reports/catalogue/<timestamp>``.

On your own model and data (``--config-dir myconf model=mynet data=mydata``, docs/models.md) every
experiment is run on them and judged on what applies: a claim none of whose checks can run there
(the model takes no ``norm``, the claim compares ablate's own families, ...) is listed as **not
applicable** with the reason, and the experiments of ``myconf/experiment/`` (your own claims) join.

Relaunching with the same ``--dir`` resumes: an experiment that finished with the same overrides
is not run again (``<DIR>/<name>/catalogue.json`` says so), and inside an unfinished one the sweep
itself skips the runs that are done. ``--index-only`` rebuilds the page from what is there.

Several experiments run at once, each its own process: ``--jobs N`` of them, by default as many as
the cores allow at the thread count every experiment runs at (``threads=N`` among the overrides, else
conf/config.yaml's ``threads``), so that jobs × threads ≤ cores. That thread count is the same
whatever ``--jobs`` is (it changes floating point, so the verdicts do not depend on ``--jobs``): each
experiment gets it as ``OMP_NUM_THREADS`` too, and ``catalogue.json`` records it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from importlib.resources import files
from pathlib import Path
from typing import Sequence

from ablate import applicability, parallel
from ablate.report.judge import stats
from ablate.report.build import ReportError, build_report
from ablate.report.present.verdict import VERDICT_JSON
from ablate.report.present.render import (Bullets, Code, Document, Heading, Link, Para, Plain, Table, Thumb, badge, to_html,
                                  to_markdown)
from ablate.results import atomic_write_text

DONE = "catalogue.json"            # per experiment: how and when it finished
INDEX_MD, INDEX_HTML = "index.md", "index.html"


def experiments(config_dir: Path | None = None) -> list[str]:
    """The experiments shipped in ``conf/experiment`` (the package ``ablate.conf``) and those of
    ``<config_dir>/experiment`` (a user's own claims), sorted."""
    folders = [files("ablate.conf") / "experiment"]
    if config_dir is not None and (Path(config_dir) / "experiment").is_dir():
        folders.append(Path(config_dir) / "experiment")
    return sorted({p.name[: -len(".yaml")] for folder in folders for p in folder.iterdir() if p.name.endswith(".yaml")})


def config_dir_args(config_dir: Path | None) -> list[str]:
    """What each experiment's command gets for ``--config-dir`` (an absolute path: the commands run
    from anywhere)."""
    return ["--config-dir", str(Path(config_dir).resolve())] if config_dir is not None else []


# ---------------------------------------------------------------------------------------------
# Running
# ---------------------------------------------------------------------------------------------


def experiment_threads(overrides: Sequence[str]) -> int:
    """The torch threads every experiment runs at: ``threads=N`` among ``overrides`` (a sweep over
    several: the largest), else conf/config.yaml's ``threads`` (``null``: torch's own default, every core)."""
    from omegaconf import OmegaConf

    given = [o.split("=", 1)[1] for o in overrides if "=" in o and o.split("=", 1)[0].lstrip("+") == "threads"]
    value = given[-1] if given else OmegaConf.load(files("ablate.conf") / "config.yaml").get("threads")
    counts = [int(n) for n in str(value).replace(" ", "").split(",") if n.isdigit()] if value is not None else []
    return max(counts) if counts and max(counts) > 0 else parallel.cores()   # 0 is null to ablate.run


def default_jobs(threads: int) -> int:
    """As many experiments at once as the cores allow at ``threads`` each: jobs × threads ≤ cores."""
    return parallel.processes(max(threads, 1))


def _finished(folder: Path, overrides: Sequence[str], threads: int | None = None) -> dict | None:
    try:
        done = json.loads((folder / DONE).read_text())
    except (OSError, ValueError):
        return None
    same = done.get("overrides") == list(overrides) and done.get("threads", threads) == threads
    return done if same and done.get("returncode") == 0 else None


def run_experiment(name: str, folder: Path, overrides: Sequence[str], threads: int | None = None,
                   config_dir: Path | None = None) -> dict:
    """Run one experiment's sweep into ``folder`` (skipped when it already finished with these
    overrides and threads); returns what ``catalogue.json`` holds (return code, wall time, threads).
    ``threads`` (default :func:`experiment_threads`) is also the process's ``OMP_NUM_THREADS``."""
    threads = experiment_threads(overrides) if threads is None else threads
    options = config_dir_args(config_dir)          # Hydra's options go before the overrides
    done = _finished(folder, [*options, *overrides], threads)
    if done is not None:
        print(f"catalogue: {name}: finished before ({done['wall_time_s']:.0f} s), skipped", flush=True)
        return done
    folder.mkdir(parents=True, exist_ok=True)
    # the catalogue fills the cores with experiments, so each runs its jobs in its own process
    # (an experiment launched alone may hand them to workers: ablate.parallel)
    launcher = [] if any(o.split("=", 1)[0] == "hydra/launcher" for o in overrides) else ["hydra/launcher=basic"]
    command = [sys.executable, "-m", "ablate", *options, f"+experiment={name}", *overrides, *launcher,
               f"hydra.sweep.dir={folder}"]
    print(f"catalogue: {name}: {' '.join(command[2:])} (OMP_NUM_THREADS={threads})", flush=True)
    tic = time.perf_counter()
    with open(folder / "catalogue.log", "a") as log:
        returncode = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT,
                                     env={**os.environ, "OMP_NUM_THREADS": str(threads), "ABLATE_LIST_APPLICABLE": "0"})
    done = {"experiment": name, "overrides": [*options, *overrides], "threads": threads, "returncode": returncode,
            "wall_time_s": round(time.perf_counter() - tic, 1), "finished_at": datetime.now().isoformat(timespec="seconds")}
    atomic_write_text(folder / DONE, json.dumps(done, indent=2) + "\n")
    status = "done" if returncode == 0 else f"FAILED (exit {returncode}; see {folder / 'catalogue.log'})"
    print(f"catalogue: {name}: {status} in {done['wall_time_s']:.0f} s", flush=True)
    return done


def run_all(names: Sequence[str], out_dir: Path, overrides: Sequence[str], jobs: int | None = None,
            config_dir: Path | None = None) -> list[str]:
    """Every experiment of ``names`` (:func:`run_experiment`), ``jobs`` at a time (default
    :func:`default_jobs`), all at one thread count; says what it chose. Returns the failed ones."""
    threads = experiment_threads(overrides)
    jobs = max(1, min(default_jobs(threads) if jobs is None else jobs, len(names)))
    note = "" if jobs * threads <= parallel.cores() else " (more than the cores: the experiments will wait for each other)"
    print(f"catalogue: {len(names)} experiments, {jobs} at a time × {threads} thread(s) each on {parallel.cores()} "
          f"cores{note}", flush=True)
    tic = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        done = list(pool.map(lambda name: run_experiment(name, out_dir / name, overrides, threads, config_dir), names))
    print(f"catalogue: {len(names)} experiments in {time.perf_counter() - tic:.0f} s", flush=True)
    return [name for name, d in zip(names, done) if d["returncode"] != 0]


# ---------------------------------------------------------------------------------------------
# The index page
# ---------------------------------------------------------------------------------------------


@dataclass
class Entry:
    """One experiment as the index shows it."""

    name: str
    folder: Path
    claims: list = field(default_factory=list)      # verdict.json's claims
    figure: Path | None = None
    wall_time_s: float | None = None
    runs: int = 0
    versions: dict = field(default_factory=dict)
    problem: str | None = None                       # why there is no verdict
    not_applicable: str | None = None                # why nothing of the claim runs on the user's model/data
    statement: str = ""                              # the claim's, for a not-applicable row
    subject: str | None = None                       # a user's model and data (applicability.json), else None


def _subject(folder: Path) -> str | None:
    try:
        found = applicability.read(folder)
    except ValueError:
        return None
    return found.subject if found is not None else None


def read_entry(name: str, folder: Path) -> Entry:
    """One experiment's row, from its report's ``verdict.json`` (built first from the records when a
    sweep finished without one, e.g. a report deleted by hand)."""
    entry = Entry(name, folder)
    try:
        entry.wall_time_s = json.loads((folder / DONE).read_text()).get("wall_time_s")
    except (OSError, ValueError):
        pass
    if not folder.is_dir():
        entry.problem = "not run yet"
        return entry
    try:
        found = applicability.read(folder)
    except ValueError as e:
        entry.problem = str(e)
        return entry
    if found is not None and not found.applies:
        entry.not_applicable, entry.statement, entry.subject = found.reason, found.statement, found.subject
        return entry
    path = folder / VERDICT_JSON
    if not path.is_file():
        try:
            build_report(folder)
        except ReportError as e:
            entry.problem = str(e)
            return entry
    try:
        verdicts = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        entry.problem = f"{path} could not be read: {e}"
        return entry
    entry.runs, entry.versions, entry.claims = verdicts["runs"], verdicts["versions"], verdicts["claims"]
    entry.subject = _subject(folder)
    figure = verdicts.get("headline_figure")
    if figure and (folder / figure).is_file():
        entry.figure = folder / figure
    return entry


def _clauses(claim: dict) -> list:
    parts: list = []
    for clause in claim["clauses"]:
        parts += ["; " if parts else "", badge(clause["verdict"]), " ", Plain(clause["text"] or clause["name"])]
    return parts or [badge(claim["verdict"])]


def _borderline(claim: dict) -> str:
    """`` (borderline: 1 check)`` when verdict.json marks checks of the claim borderline, else nothing."""
    n = len(claim.get("borderline") or ())
    return f" (borderline: {n} check{'s' if n != 1 else ''})" if n else ""


def _hardware() -> str:
    text = f"{platform.machine()} {platform.processor() or ''}".strip() + f", {os.cpu_count()} CPU cores"
    try:
        import torch

        if torch.cuda.is_available():
            text += ", GPU " + ", ".join(torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count()))
        else:
            text += ", no GPU"
    except Exception:  # pragma: no cover - torch is a dependency
        pass
    return f"{text}; {platform.system()} {platform.release()}"


def compose_index(entries: Sequence[Entry], out_dir: Path, overrides: Sequence[str]) -> Document:
    claims = [c for e in entries for c in e.claims]
    counts = {v: sum(c["verdict"] == v for c in claims) for v in (stats.SUPPORTED, stats.NOT_SUPPORTED,
                                                                stats.INCONCLUSIVE, stats.NOT_INFORMATIVE)}
    counts = {v: n for v, n in counts.items() if n or v != stats.NOT_INFORMATIVE}   # shown when a control failed
    clause_counts = {}
    for c in claims:
        for clause in c["clauses"]:
            key = "no effect within ±δ" if clause["verdict"].startswith("no effect") else clause["verdict"]
            clause_counts[key] = clause_counts.get(key, 0) + 1
    doc = Document("ablate catalogue: every claim, measured")
    inapplicable = [e for e in entries if e.not_applicable]
    missing = sum(not e.claims and not e.not_applicable for e in entries)
    subjects = sorted({e.subject for e in entries if e.subject})
    doc.add(Para([f"{len(claims)} claims from {len(entries) - missing - len(inapplicable)} of {len(entries)} experiments"
                  + (f" ({missing} without a verdict yet)" if missing else "")
                  + (f", {len(inapplicable)} {badge(stats.NOT_APPLICABLE)} to {' / '.join(subjects)}"
                     if inapplicable else "")
                  + (f" ({' '.join(overrides)})" if overrides else "") + ": "
                  + ", ".join(f"{n} {badge(v)}" for v, n in counts.items()) + ". Clauses: "
                  + ", ".join(f"{n} {badge(v)}" for v, n in sorted(clause_counts.items())) + "."]))
    rows = []
    for e in entries:
        link = os.path.relpath(e.folder / "report.html", out_dir)
        thumb = Thumb(e.figure.read_bytes(), os.path.relpath(e.figure, out_dir), f"{e.name}: headline figure",
                      link) if e.figure else ""
        time_text = f"{e.wall_time_s / 60:.1f} min, {e.runs} runs" if e.wall_time_s is not None else f"{e.runs} runs"
        if e.not_applicable:
            rows.append([Code(e.name), Plain(e.statement), [badge(stats.NOT_APPLICABLE), " ", Plain(e.not_applicable)],
                         "", badge(stats.NOT_APPLICABLE)])
            continue
        if not e.claims:
            rows.append([Code(e.name), Plain(e.problem or "no claim"), "", "", Plain(time_text)])
        for claim in e.claims:
            rows.append([[Code(e.name), " ", Link("report", link)], Plain(claim["statement"]), _clauses(claim),
                         thumb, [badge(claim["verdict"]), _borderline(claim), " ", Plain(time_text)]])
    doc.add(Heading(2, "Claims"), Table(["experiment", "claim", "verdict per clause", "headline figure",
                                         "claim verdict, cost"], rows))
    versions = next((e.versions for e in entries if e.versions), {})
    doc.add(Heading(2, "Where this was measured"),
            Bullets([*([["model and data: ", Plain(" / ".join(subjects) + " (yours: only the claims and clauses "
                                                           "that apply to them were run)")]] if subjects else []),
                     ["hardware: ", Plain(_hardware())],
                     ["versions: ", Plain(", ".join(f"{k} {v}" for k, v in versions.items()) or "unknown")],
                     ["built: ", Plain(datetime.now().isoformat(timespec="seconds"))]]))
    doc.add(Heading(2, "Reading it"),
            Para(["Each claim's verdict is its checks' verdict: **supported** only when every check is, "
                  "**not supported** when a check contradicts it or shows no effect (both Holm-corrected), "
                  "**inconclusive** otherwise; a clause no check can test is **not tested**, and on a model or "
                  "data of your own a clause whose checks cannot run there is **not applicable**, with the reason "
                  "(docs/models.md); a clause whose control fails (its design did not reach the effect at this "
                  "budget, e.g. every arm at chance) is **not informative at this budget**, whatever its checks "
                  "said. Open a report for the numbers, the controls, the power of each check and the runs behind it."]))
    return doc


def write_index(out_dir: Path, names: Sequence[str], overrides: Sequence[str]) -> Path:
    entries = [read_entry(name, out_dir / name) for name in names]
    doc = compose_index(entries, out_dir, overrides)
    atomic_write_text(out_dir / INDEX_HTML, to_html(doc))
    return atomic_write_text(out_dir / INDEX_MD, to_markdown(doc))


# ---------------------------------------------------------------------------------------------
# Command line
# ---------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m ablate.catalogue", description=__doc__.split("\n\n")[0])
    parser.add_argument("overrides", nargs="*", help="Hydra overrides for every experiment, e.g. budget=smoke")
    parser.add_argument("--dir", type=Path, default=None, help="catalogue folder (relaunch with it to resume); "
                        "default reports/catalogue/<timestamp>")
    parser.add_argument("--only", default=None, help="comma-separated experiment names (default: all)")
    parser.add_argument("--index-only", action="store_true", help="only rebuild index.md/index.html")
    parser.add_argument("--config-dir", "-cd", type=Path, default=None, help="a folder of your own configs (model/, "
                        "data/, experiment/ ...), as Hydra's --config-dir; its experiments join the catalogue")
    parser.add_argument("--jobs", type=int, default=None, help="experiments run at once, each its own process "
                        "(default: cores // the experiments' threads, so that jobs × threads ≤ cores)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.config_dir is not None and not args.config_dir.is_dir():
        print(f"ablate.catalogue: --config-dir {args.config_dir} is not a folder", file=sys.stderr)
        return 2
    known = experiments(args.config_dir)
    names = known
    if args.only:
        names = [n.strip() for n in args.only.split(",") if n.strip()]
        unknown = [n for n in names if n not in known]
        if unknown:
            print(f"ablate.catalogue: --only names unknown experiment(s) {', '.join(unknown)}; valid: "
                  f"{', '.join(known)}", file=sys.stderr)
            return 2
    out_dir = args.dir or Path("reports", "catalogue", datetime.now().strftime("%Y-%m-%d_%H-%M-%S"))
    out_dir.mkdir(parents=True, exist_ok=True)
    if args.jobs is not None and args.jobs < 1:
        print("ablate.catalogue: --jobs must be at least 1", file=sys.stderr)
        return 2
    failed = [] if args.index_only else run_all(names, out_dir, args.overrides, args.jobs, args.config_dir)
    index = write_index(out_dir, names, args.overrides)
    print(f"catalogue written to {index}\n                     {index.with_name(INDEX_HTML)}")
    if failed:
        print(f"catalogue: failed: {', '.join(failed)} (the index shows what they left)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
