"""The ablate sweeper (``hydra/sweeper: ablate``, the default in conf/config.yaml).

Without a claim, or with ``seed`` swept by hand, it is Hydra's basic sweeper: the grid product of
``hydra.sweeper.params`` and the command line's sweep overrides (the command line wins), the same
job order, the same job folders, ``max_batch_size`` jobs per launch. ``hydra.sweeper.grids`` (a
list of params) makes the sweep a union of grids, e.g. each optimizer on its own learning rates. Every job is composed and
checked (:func:`ablate.validate.validate`) before the first one is launched.

With a claim (``+experiment=...``) and ``seed`` not swept, it adds the seeds itself, in looks:

* look 0: every cell of the grid × seeds ``0 .. budget.seeds-1`` (jobs ``<cell> seed=k``);
* after each look it reads the sweep's run records, judges the claim with the report's own code
  (:func:`ablate.report.judge.claim.judge_claim`), and launches the next look's seeds only for the cells
  that a still-undecided check reads (a tune check: its chosen cells, with fresh seeds), until
  every check is decided or ``budget.max_seeds`` is reached.

Where the family allows it (:func:`ablate.members.vectorize_refusal`), a look's seeds of one cell are
one job (``<cell> seeds=[0,1,2]``: the seeds trained as one vectorized model), and the cells that
differ only in ``optimizer.lr`` are one job too (``lrs=[...]``, for an optimizer that takes a rate
per member); each member still writes its record in the folder its own ``<cell> seed=k`` job
would have, so the report, resume and ``runs.csv`` see no difference. ``vectorize=false`` gives
one job per seed.

A job whose record says ``ok`` is never launched again, so a killed sequential sweep, relaunched
with the same ``hydra.sweep.dir``, walks the same looks and finishes them.
"""


# No `from __future__ import annotations` here: Hydra's plugin scan executes this module without
# registering it in sys.modules, and @dataclass then cannot resolve string annotations.
import itertools
import logging
import os
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

from hydra.core.config_store import ConfigStore
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.core.override_parser.types import Override
from hydra.errors import HydraException
from hydra.plugins.launcher import Launcher
from hydra.plugins.sweeper import Sweeper
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, OmegaConf

from ablate.parallel import PAYS_AFTER_S

log = logging.getLogger("ablate")

LIST_APPLICABLE = "ABLATE_LIST_APPLICABLE"  # "0": a not-applicable experiment does not list those that apply
MAX_ROUNDS = 100  # looks are few (3 -> 5 -> 8); this only guards against a bug looping forever


@dataclass
class AblateSweeperConf:
    _target_: str = "hydra_plugins.ablate_sweeper.ablate_sweeper.AblateSweeper"
    max_batch_size: Optional[int] = None
    params: Optional[Dict[str, str]] = None
    # A union of grids: each entry's params are added to `params` (and the command line) and swept;
    # the jobs of every entry run, in order, each once. For grids that differ by part, e.g. each
    # optimizer on its own learning-rate grid: [{optimizer: sgd, optimizer.lr: "0.1,1"}, {optimizer: adam, ...}]
    grids: Optional[List[Dict[str, str]]] = None
    # Another sweeper's config (with its _target_) to run instead of this one. A config appended
    # with +search=... cannot override the primary config's hydra/sweeper choice, so
    # conf/search/lr.yaml composes Optuna's sweeper here: `/hydra/sweeper@hydra.sweeper.delegate: optuna`.
    delegate: Optional[Any] = None
    # A sweep launched with Hydra's default (basic) launcher hands its jobs to cores ÷ threads worker
    # processes (the joblib launcher) once the jobs left in a look would take this many seconds one
    # after another, at the mean time of the jobs it ran in its own process after the first (that one
    # pays the imports); null: never (ablate.parallel)
    workers_after_s: Optional[float] = PAYS_AFTER_S
    _recursive_: bool = False  # the delegate is instantiated in setup(), as Hydra would instantiate it


ConfigStore.instance().store(group="hydra/sweeper", name="ablate", node=AblateSweeperConf, provider="ablate")


# ---------------------------------------------------------------------------------------------
# The grid, with Hydra's public override API
# ---------------------------------------------------------------------------------------------


def expand(overrides: Sequence[Override]) -> list[list[str]]:
    """Every job of the grid, in the basic sweeper's order: one list of ``key=value`` per job, keys
    in first-seen order (a later override of the same key replaces the value in place)."""
    final: "OrderedDict[str, list[str]]" = OrderedDict()
    for override in overrides:
        key = override.get_key_element()
        if override.is_sweep_override():
            if not override.is_discrete_sweep():
                raise HydraException(f"the ablate sweeper does not support sweep type {override.value_type.name} "
                                     f"({key}); use a list (a,b,c), range(...) or choice(...)")
            final[key] = [f"{key}={value}" for value in override.sweep_string_iterator()]
        else:
            final[key] = [f"{key}={override.get_value_element_as_str()}"]
    return [list(job) for job in itertools.product(*final.values())]


def union(sweeps: Sequence[Sequence[str]], parser: OverridesParser) -> list[list[str]]:
    """The jobs of several grids (``hydra.sweeper.grids``), in order, a job that two grids share once."""
    from ablate.report.spec.levels import canonical

    jobs, seen = [], set()
    for lines in sweeps:
        for job in expand(parser.parse_overrides(list(lines))):
            key = tuple(sorted((k, repr(canonical(v))) for k, v in job_dict(job).items()))
            if key not in seen:
                seen.add(key)
                jobs.append(job)
    return jobs


def job_dict(job: Sequence[str]) -> dict[str, str | None]:
    """A job's overrides as its run record stores them (``ablate.provenance.job_overrides``): key without
    ``+``/``~`` -> value text."""
    out: dict[str, str | None] = {}
    for override in job:
        key, _, value = override.partition("=")
        out[key.lstrip("+~")] = value if value or not key.startswith("~") else None
    return out


def seed_swept(grid: Sequence[Sequence[str]]) -> bool:
    """Whether the grid sets the seed itself (`seed=...`, or `seeds=[...]`: several seeds in one job)."""
    return any(key in job_dict(job) for job in grid[:1] for key in ("seed", "seeds"))


SEEDS, LRS = "seeds", "lrs"   # how a cell's runs may be packed into one job (see look_jobs)
LR_KEY = "optimizer.lr"


def _seeds(seeds: Sequence[int]) -> str:
    return f"seed={seeds[0]}" if len(seeds) == 1 else f"seeds=[{','.join(str(s) for s in seeds)}]"


def look_jobs(cells: Sequence[Sequence[str]], seeds: Sequence[Sequence[int]],
              packing: Sequence[str | None] | None = None) -> list[list[str]]:
    """The jobs of a look: each cell (its overrides) with its seeds. The one place that turns cells
    and seeds into jobs.

    ``packing[i]`` says how cell ``i`` may be packed: None, one ``seed=k`` job per seed; ``seeds``,
    one job ``seeds=[...]`` for all its seeds; ``lrs``, also one job for the cells that differ only
    in ``optimizer.lr`` and have the same seeds (``lrs=[...] seeds=[...]``).
    """
    packing = list(packing) if packing is not None else [None] * len(cells)
    entries: list = []                                        # a job, or the key of an lr group
    groups: "OrderedDict[tuple, list[str]]" = OrderedDict()   # (cell without its lr, seeds) -> lr texts
    for cell, cell_seeds, mode in zip(cells, seeds, packing):
        cell_seeds = tuple(cell_seeds)
        lr = job_dict(cell).get(LR_KEY)
        if not cell_seeds:
            continue
        if mode == LRS and lr is not None:
            key = (tuple(o for o in cell if o.partition("=")[0].lstrip("+") != LR_KEY), cell_seeds)
            if key not in groups:
                groups[key] = []
                entries.append(key)
            groups[key].append(lr)
        elif mode in (SEEDS, LRS):
            entries.append([*cell, _seeds(cell_seeds)])
        else:
            entries.extend([*cell, f"seed={seed}"] for seed in cell_seeds)

    def job(entry) -> list[str]:
        if isinstance(entry, list):
            return entry
        (rest, group_seeds), lrs = entry, groups[entry]
        return [*rest, f"{LR_KEY}={lrs[0]}" if len(lrs) == 1 else f"lrs=[{','.join(lrs)}]", _seeds(group_seeds)]

    return [job(e) for e in entries]


def batches(jobs: Sequence[Sequence[str]], size: int | None) -> list[list[list[str]]]:
    jobs = [list(j) for j in jobs]
    if not jobs:
        return []
    if size is None or size == -1:
        return [jobs]
    assert size > 0, "hydra.sweeper.max_batch_size must be >= 1 (or null: one batch)"
    return [jobs[i:i + size] for i in range(0, len(jobs), size)]


# ---------------------------------------------------------------------------------------------
# The sweeper
# ---------------------------------------------------------------------------------------------


class AblateSweeper(Sweeper):
    def __init__(self, max_batch_size: Optional[int] = None, params: Optional[Dict[str, str]] = None,
                 grids: Optional[List[Dict[str, str]]] = None, delegate: Optional[DictConfig] = None,
                 workers_after_s: Optional[float] = PAYS_AFTER_S) -> None:
        super().__init__()
        self.workers_after_s = workers_after_s
        self.max_batch_size = max_batch_size
        self.params = dict(params or {})
        self.grids = [dict(g) for g in grids or []]
        self.delegate_config = delegate
        self.delegate: Optional[Sweeper] = None
        self.hydra_context: Optional[HydraContext] = None
        self.config: Optional[DictConfig] = None
        self.launcher: Optional[Launcher] = None
        self.job_idx = 0
        self.returns: list = []

    def setup(self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig) -> None:
        from hydra.core.plugins import Plugins
        from hydra.utils import instantiate

        self.hydra_context = hydra_context
        self.config = config
        if self.delegate_config is not None:
            self.delegate = instantiate(self.delegate_config)
            self.delegate.setup(hydra_context=hydra_context, task_function=task_function, config=config)
            return
        from ablate.compose_cache import ComposeCache

        # a job composed for the check is launched without composing it again (ablate.compose_cache)
        hydra_context = HydraContext(config_loader=ComposeCache(hydra_context.config_loader),
                                     callbacks=hydra_context.callbacks)
        self.hydra_context = hydra_context
        self.launcher = Plugins.instance().instantiate_launcher(
            hydra_context=hydra_context, task_function=task_function, config=config)
        if self.workers_after_s is not None:   # an experiment launched alone fills the cores (ablate.parallel)
            from ablate.parallel import AutoLauncher, joblib_launcher, sweep_workers

            workers = sweep_workers(config)
            log.debug("ablate sweeper: worker processes: %s", workers)
            if workers.allowed:
                self.launcher = AutoLauncher(
                    self.launcher, workers, lambda n: joblib_launcher(hydra_context, task_function, config, n),
                    self.workers_after_s)

    # -- composing and checking ------------------------------------------------------------------

    def compose(self, job: Sequence[str]) -> DictConfig:
        return self.hydra_context.config_loader.load_sweep_config(master_config=self.config,
                                                                  sweep_overrides=list(job))

    def check(self, jobs: Sequence[Sequence[str]]) -> None:
        """Compose and validate every job; the first invalid one stops the sweep (exit 2) before
        any folder is made."""
        from ablate.hydra_callbacks import check_job

        tic = time.perf_counter()
        for job in jobs:
            check_job(self.compose(job), f"sweep job {' '.join(job)}: ")
        log.debug("checked %d jobs in %.2f s", len(jobs), time.perf_counter() - tic)

    # -- launching ---------------------------------------------------------------------------------

    def launch(self, jobs: Sequence[Sequence[str]]) -> None:
        for batch in batches(jobs, self.max_batch_size):
            results = self.launcher.launch(batch, initial_job_idx=self.job_idx)
            for r in results:
                _ = r.return_value  # re-raises a job's exception, as the basic sweeper does
            self.job_idx += len(batch)
            self.returns.append(results)

    def sweep(self, arguments: List[str]) -> Any:
        if self.delegate is not None:
            return self.delegate.sweep(arguments)
        assert self.config is not None and self.launcher is not None and self.hydra_context is not None
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        grid = union([[*self._lines(self.params), *self._lines(g), *arguments] for g in self.grids or [{}]], parser)
        applicability = None
        if self.config.get("claim") is not None and not seed_swept(grid):
            # before any job is composed: on the user's data, a cell setting data.source.length cannot compose
            applicability, kept = self._applicability(arguments, self.config, parser)
        if applicability is not None:
            from ablate.applicability import describe, write

            claim = OmegaConf.to_container(self.config.claim, resolve=True)
            for line in describe(applicability, claim):
                log.info("ablate sweeper: %s", line)
            if not applicability.applies:
                _refuse_bad_claim(claim)       # a claim that would be refused is refused, not "not applicable"
                write(self._start(), applicability)
                self._not_applicable(applicability, claim)
                return self.returns
            grid = union([[*cell, *arguments] for cell in kept], parser)
        first = self.compose(grid[0])
        if first.get("claim") is None or seed_swept(grid):
            self.check(grid)
            self._start()
            self.launch(grid)
            return self.returns
        return self._sequential(grid, first, applicability)

    # -- applicability (ablate.applicability) ----------------------------------------------------

    def _compose_task(self, overrides: Sequence[str]) -> DictConfig:
        from hydra.types import RunMode

        return self.hydra_context.config_loader.load_configuration(
            config_name=self.config.hydra.job.config_name, overrides=list(overrides), run_mode=RunMode.MULTIRUN)

    def _assess(self, task: Sequence[str], parser: OverridesParser, cfg: DictConfig, params: Dict[str, Any],
                grids: Sequence[Dict[str, Any]]):
        """What of the claim in ``cfg`` (composed from the command line ``task``, the sweep's
        ``params``/``grids``) runs on its model and data: an :class:`Applicability` and the experiment's
        cells that can run; (None, None) for ablate's own model and data."""
        from ablate.applicability import assess_config, own_task, users

        pins = job_dict([o for o in task if not o.lstrip("+").startswith("experiment=")])
        if not any(users(cfg, pins)):
            return None, None
        try:
            own = self._compose_task(own_task(task))
        except Exception as e:  # noqa: BLE001 - the design without the command line does not compose: judge on cfg
            log.debug("the experiment as designed does not compose (%s); its defaults are read from the sweep's", e)
            own = cfg
        cells = union([[*self._lines(params), *self._lines(g)] for g in grids or [{}]], parser)
        found, keep = assess_config(cfg, own, pins, [job_dict(c) for c in cells])
        return (found, [c for c, k in zip(cells, keep) if k]) if found is not None else (None, None)

    def _applicability(self, arguments: Sequence[str], first: DictConfig, parser: OverridesParser):
        return self._assess(arguments, parser, first, self.params, self.grids)

    def _not_applicable(self, applicability: Any, claim: dict) -> None:
        """Nothing of the claim runs on this model and data: say so, and which experiments do."""
        reason = applicability.reason
        subject = applicability.model if applicability.user_model else f"data={applicability.data}"
        lines = [f"ablate: not applicable: {claim.get('name', 'this experiment')} on {subject}: {reason}"]
        if os.environ.get(LIST_APPLICABLE) == "0":   # the catalogue runs them all anyway
            print(lines[0], file=sys.stderr, flush=True)
            return
        task = list(self.config.hydra.overrides.task)
        apply, other = [], []
        parser = OverridesParser.create(config_loader=self.hydra_context.config_loader)
        for name in self.hydra_context.config_loader.get_group_options("experiment"):
            try:
                other_task = [*(o for o in task if not o.lstrip("+").startswith("experiment=")), f"+experiment={name}"]
                cfg = self._compose_task(other_task)
                sweeper = cfg.hydra.sweeper
                params = dict(sweeper.get("params") or {})
                grids = [dict(g) for g in sweeper.get("grids") or []]
                found, _ = (self._assess(other_task, parser, cfg, params, grids) if cfg.get("claim") is not None
                            else (None, None))
            except Exception as e:  # noqa: BLE001 - one experiment that cannot compose does not hide the others
                log.debug("applicability of %s not assessed: %s", name, e)
                continue
            (apply if found is None or found.applies else other).append(name)
        lines.append(f"  experiments that apply: {', '.join(apply) or 'none'}")
        print("\n".join(lines), file=sys.stderr, flush=True)

    @staticmethod
    def _lines(params: Dict[str, Any]) -> list[str]:
        return [f"{k}={v}" for k, v in params.items()]

    def _start(self) -> Path:
        sweep_dir = Path(self.config.hydra.sweep.dir)
        sweep_dir.mkdir(parents=True, exist_ok=True)
        OmegaConf.save(self.config, sweep_dir / "multirun.yaml")
        return sweep_dir

    # -- sequential seeds ------------------------------------------------------------------------

    def packing(self, cell: Sequence[str]) -> Optional[str]:
        """How the runs of ``cell`` may share a job (see :func:`look_jobs`): ``lrs`` when its seeds and
        its learning rate can be members of one vectorized job, ``seeds`` when only its seeds can,
        None when the family, the trainer or ``vectorize=false`` refuse it."""
        from ablate.members import Member, vectorize_refusal     # reads the config only: no torch here

        cfg = self.compose([*cell, "seeds=[0,1]"])
        if vectorize_refusal(cfg, [Member(0), Member(1)]) is not None:
            return None
        if LR_KEY in job_dict(cell):
            lr = float(cfg.optimizer.lr)
            if vectorize_refusal(cfg, [Member(0, lr), Member(0, 2 * lr)]) is None:
                return LRS
        return SEEDS

    def _sequential(self, grid: list[list[str]], first: DictConfig, applicability: Any = None) -> Any:
        from ablate.report.records.values import cell_key
        from ablate.results import is_ok

        seeds, max_seeds = _budget_seeds(first)
        self.check([[*grid[0], "seed=0"]])   # a model that cannot be imported is the config check's to say, before packing
        keys = [cell_key(job_dict(cell)) for cell in grid]
        index = {key: i for i, key in enumerate(keys)}
        tic = time.perf_counter()
        decided: dict = {}        # the learning rate does not change how a cell packs: one compose per rest
        packing = []
        for cell in grid:
            rest = tuple(o for o in cell if o.partition("=")[0].lstrip("+") != LR_KEY)
            if rest not in decided:
                decided[rest] = self.packing(cell)
            packing.append(decided[rest])
        log.debug("packing of %d cells decided in %.2f s", len(grid), time.perf_counter() - tic)
        wanted = [(i, seed) for i in range(len(grid)) for seed in range(seeds)]
        self.check(self._jobs(grid, packing, wanted))
        claim = OmegaConf.to_container(first.claim, resolve=True)
        sweep_dir = self._start()
        if applicability is not None:
            from ablate.applicability import write

            write(sweep_dir, applicability)
        launched: set = set()
        look = 0
        log.info("ablate sweeper: %d cells, seeds %d up to %s (budget.seeds, budget.max_seeds); %d cell(s) vectorized",
                 len(grid), seeds, max_seeds if max_seeds is not None else seeds, sum(m is not None for m in packing))
        _remove_finished_checkpoints(sweep_dir, _read_records(sweep_dir))
        for _ in range(MAX_ROUNDS):
            records = _read_records(sweep_dir)
            done = {(cell_key(r.get("overrides")), r.get("seed")) for r in records if is_ok(r)}
            todo = [(i, seed) for i, seed in wanted if (keys[i], seed) not in done and (keys[i], seed) not in launched]
            if todo:
                jobs = self._jobs(grid, packing, todo)
                log.info("ablate sweeper: look %d: launching %d run(s) in %d job(s)", look, len(todo), len(jobs))
                launched |= {(keys[i], seed) for i, seed in todo}
                self.launch(jobs)
                records = _read_records(sweep_dir)
            result = _judge(records, claim, applicability)
            if result is None:
                break
            more = sorted((pair for pair in result.needs() if pair[0] in index and pair not in launched),
                          key=lambda pair: (index[pair[0]], pair[1]))
            if not more:
                open_checks = [c.spec.name for c in result.checks if not c.decided]
                log.info("ablate sweeper: done after look %d; %s", look,
                         f"undecided at the cap: {'; '.join(open_checks)}" if open_checks else "every check decided")
                break
            log.info("ablate sweeper: open checks: %s", "; ".join(_open_text(c) for c in result.open_checks))
            wanted = [(index[cell], seed) for cell, seed in more]
            look += 1
        return self.returns

    @staticmethod
    def _jobs(grid: Sequence[Sequence[str]], packing: Sequence[Optional[str]],
              runs: Sequence[tuple]) -> list[list[str]]:
        """The jobs that make ``runs`` (cell index, seed), packed as each cell allows."""
        by_cell: "OrderedDict[int, list[int]]" = OrderedDict()
        for i, seed in runs:
            by_cell.setdefault(i, []).append(seed)
        cells = list(by_cell)
        return look_jobs([grid[i] for i in cells], [by_cell[i] for i in cells], [packing[i] for i in cells])


def _refuse_bad_claim(claim: dict) -> None:
    """Exit 2 with the config check's words when ``claim`` has errors."""
    from ablate.report.spec.rules import claim_errors

    errors = claim_errors(claim)
    if errors:
        print("ablate: invalid config:\n  - " + "\n  - ".join(errors), file=sys.stderr)
        raise SystemExit(2)


def _open_text(check: Any) -> str:
    """An open check in the log: its name, and why it goes on when its look decided on a hair."""
    if check.decided and check.borderline:
        room = f"{check.room:.2f} half-widths of room" if check.room == check.room else "no room measured"
        survives = "" if check.one_seed_out is not False else ", undone by leaving out one seed"
        return f"{check.spec.name} (borderline {check.verdict}: {room}{survives}; the next look decides)"
    return check.spec.name


def _budget_seeds(cfg: DictConfig) -> tuple[int, int | None]:
    seeds, max_seeds = OmegaConf.select(cfg, "budget.seeds"), OmegaConf.select(cfg, "budget.max_seeds")
    problems = []
    if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
        problems.append(f"budget.seeds={seeds!r} is invalid: it must be an integer >= 1 (seeds per cell; "
                        "the seeds are 0 .. budget.seeds-1)")
    if max_seeds is not None and (not isinstance(max_seeds, int) or isinstance(max_seeds, bool) or
                                  (isinstance(seeds, int) and max_seeds < seeds)):
        problems.append(f"budget.max_seeds={max_seeds!r} is invalid: it must be null (no sequential seeds) or "
                        f"an integer >= budget.seeds")
    if problems:
        print("ablate: invalid config:\n  - " + "\n  - ".join(problems), file=sys.stderr)
        raise SystemExit(2)
    return seeds, max_seeds


def _read_records(sweep_dir: Path) -> list[dict]:
    """Every readable, valid record of the sweep (a torn or foreign file is skipped here; the
    report lists it)."""
    from ablate.results import load_records

    return load_records(sweep_dir)[0]


def _remove_finished_checkpoints(sweep_dir: Path, records: list[dict]) -> None:
    """A vectorized job killed after writing all its members' records but before removing its
    checkpoint is never launched again (every run has a record), so its ``checkpoints/`` would stay:
    remove it here, as a launched job does (``ablate.run``)."""
    import shutil
    from collections import Counter

    written = Counter((r.get("vectorized") or {}).get("job") for r in records)
    for r in records:
        job = (r.get("vectorized") or {}).get("job")
        if job and written[job] >= int((r.get("vectorized") or {}).get("members") or 0) > 0:
            shutil.rmtree(sweep_dir / str(job) / "checkpoints", ignore_errors=True)


def _judge(records: list[dict], claim: dict, applicability: Any = None):
    from ablate.report.judge.claim import judge_claim

    if not records:
        return None
    return judge_claim(records, claim, applicability=applicability)
