"""What an experiment needs from the model and the data, and whether a model and data of the user's
give it (docs/models.md, "Which experiments apply").

A check reads some cells of its experiment's grid: those at its factor's two sides (and its
interaction's), at its ``where``. Each cell needs what the experiment sets in it:

* ``model=<family>``: a comparison of ablate's own families; never on a model of the user's;
* ``model.<field>`` (``depth``, ``residual``, ``dropout``, ...): a model that takes ``<field>``
  (read from its signature, :class:`ablate.contract.Signature`);
* ``activation``, ``norm`` (other than ``none``): a model that takes them (``init`` is applied by
  ablate to any model);
* ``data.source.<field>``: the experiment's own generated data, not the user's;
* ``data=<name>``: with the user's data the grid's first data set stands for theirs; a check on
  another one cannot run.

A claim may also state what no cell shows: ``needs: {data: <why>, model: <why>}`` (e.g. a design
sized for its own generated data). A check applies when every cell it reads does; a clause is
judged on the checks of it that apply, and is **not applicable** when none does; an experiment none
of whose checks apply does not run. Only a model or data of the user's is assessed: ablate's own
families and data sets run every experiment as designed.

The sweeper assesses a claim before any job starts and writes ``applicability.json`` in the sweep
folder; the report (:func:`ablate.report.judge.claim.judge_claim`) and the catalogue read it.
Torch-free: the only import of the user's code is its model class, for its signature.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ablate.report.spec.levels import canonical, same_level
from ablate.report.spec.rules import NEEDS_KEYS

APPLICABILITY_JSON = "applicability.json"
SWAPPED_PARTS = ("activation", "norm")   # set in a cell, they need a model that takes them


@dataclass(frozen=True)
class Applicability:
    """Which checks of a claim apply to the model and data the sweep runs on, and why the others do not."""

    model: str                       # ``model._target_`` of the runs
    data: str                        # the data config group choice of the runs
    n_checks: int                    # the claim's checks, those that apply and those that do not
    user_model: bool = False
    user_data: bool = False
    claim_reason: str | None = None  # why nothing of the claim applies (``needs``), else None
    checks: dict[int, str] = field(default_factory=dict)    # check index -> why it does not apply
    renames: dict[str, dict[str, str]] = field(default_factory=dict)  # key -> {the design's level: the run's}
    statement: str = ""              # the claim's, for a catalogue row when nothing of it runs
    replaced_model: bool = False     # the model is not the one the claim was designed on (its scope is rewritten)

    # -- reading ---------------------------------------------------------------------------------

    @property
    def applies(self) -> bool:
        """Whether anything of the claim runs."""
        return self.claim_reason is None and len(self.checks) < self.n_checks

    @property
    def reason(self) -> str | None:
        """Why nothing of the claim applies (None when something does)."""
        if self.applies:
            return None
        return self.claim_reason or _joined(self.checks.values())

    @property
    def subject(self) -> str:
        """What the runs are, in words: ``mynet.Net on data=mydata``."""
        return f"{self.model} on data={self.data}"

    def clause_reasons(self, claim: Mapping[str, Any]) -> dict[str, str]:
        """Clause name -> why it is not applicable, for the clauses none of whose checks applies."""
        checks = list(claim.get("checks") or [])
        out: dict[str, str] = {}
        for clause in claim.get("clauses") or []:
            name = str(clause.get("name"))
            mine = [i for i, c in enumerate(checks) if str(c.get("clause")) == name]
            if not mine:
                continue
            if self.claim_reason is not None:
                out[name] = self.claim_reason
            elif all(i in self.checks for i in mine):
                out[name] = _joined(self.checks[i] for i in mine)
        return out

    def apply(self, claim: Mapping[str, Any]) -> dict[str, Any]:
        """``claim`` as it is judged on this model and data: the checks that apply (levels renamed
        to the run's, e.g. ``data: mnist1d`` -> ``data: mydata``) and a scope that names them."""
        claim = dict(claim)
        keep = [] if self.claim_reason is not None else [
            _renamed(c, self.renames) for i, c in enumerate(claim.get("checks") or []) if i not in self.checks]
        claim["checks"] = keep
        scope = dict(claim.get("scope") or {})
        if self.replaced_model:
            scope["model"] = f"{self.model} (your model; the design's: {scope['model']})" if scope.get("model") \
                else f"{self.model} (your model)"
        if self.user_data:
            scope["data"] = f"data={self.data} (your data; the design's: {scope['data']})" if scope.get("data") \
                else f"data={self.data} (your data)"
        claim["scope"] = scope
        return claim

    # -- the file --------------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["checks"] = {str(i): why for i, why in sorted(self.checks.items())}
        return out

    @classmethod
    def from_json(cls, raw: Mapping[str, Any]) -> "Applicability":
        return cls(model=str(raw["model"]), data=str(raw["data"]), n_checks=int(raw["n_checks"]),
                   statement=str(raw.get("statement") or ""), user_model=bool(raw.get("user_model")),
                   replaced_model=bool(raw.get("replaced_model")),
                   user_data=bool(raw.get("user_data")), claim_reason=raw.get("claim_reason"),
                   checks={int(i): str(why) for i, why in (raw.get("checks") or {}).items()},
                   renames={str(k): {str(a): str(b) for a, b in v.items()} for k, v in (raw.get("renames") or {}).items()})


def _joined(reasons: Any) -> str:
    """Reasons (each ``a; b``) as one text, each part once."""
    return "; ".join(dict.fromkeys(part for r in reasons for part in str(r).split("; ")))


def write(sweep_dir: str | Path, applicability: Applicability) -> Path:
    from ablate.results import atomic_write_text

    return atomic_write_text(Path(sweep_dir) / APPLICABILITY_JSON,
                             json.dumps(applicability.to_json(), indent=2, ensure_ascii=False) + "\n")


def read(sweep_dir: str | Path) -> Applicability | None:
    """The sweep's ``applicability.json`` (None when there is none: everything applies)."""
    path = Path(sweep_dir) / APPLICABILITY_JSON
    try:
        return Applicability.from_json(json.loads(path.read_text()))
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
        raise ValueError(f"{path} could not be read: {e}") from e


# ---------------------------------------------------------------------------------------------
# Assessing a claim
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Subject:
    """The model and data a sweep runs on, as applicability sees them."""

    model: str                        # model._target_
    data: str                         # the data group choice
    takes: Callable[[str], bool] | None = None   # a user model's signature (None: one of ablate's families)
    own_data: str | None = None       # the experiment's own data choice, when the user brings other data
    design_model: str | None = None   # the experiment's own model._target_ (None: not known)

    @property
    def user_model(self) -> bool:
        return self.takes is not None

    @property
    def user_data(self) -> bool:
        return self.own_data is not None


def _at(value: Any, level: Any) -> bool:
    if isinstance(level, (list, tuple)):
        return any(_at(value, one) for one in level)
    return value is not None and same_level(value, level)


def _extreme(wanted: Any, key: str, cells: Sequence[Mapping[str, str]],
             value_of: Callable[[Mapping[str, str], str], Any]) -> Any:
    """``max``/``min`` in a ``where`` (the largest or smallest level of ``key`` in the grid), resolved."""
    if not (isinstance(wanted, str) and wanted.strip().lower() in ("min", "max")):
        return wanted
    numbers = [v for v in (canonical(value_of(c, key)) for c in cells)
               if isinstance(v, (int, float)) and not isinstance(v, bool)]
    if not numbers:
        return wanted
    return max(numbers) if wanted.strip().lower() == "max" else min(numbers)


def _reads(check: Mapping[str, Any], cell: Mapping[str, str], value_of: Callable[[Mapping[str, str], str], Any],
           cells: Sequence[Mapping[str, str]] = ()) -> bool:
    """Whether ``check`` reads the runs of ``cell`` (one of ``cells``, the grid)."""
    wanted: list[tuple[str, Any]] = []
    if check.get("factor") is not None:
        wanted.append((str(check["factor"]), [check.get("treatment"), check.get("baseline")]))
    interaction = check.get("interaction")
    if isinstance(interaction, Mapping) and interaction.get("factor") is not None:
        wanted.append((str(interaction["factor"]), [interaction.get("treatment"), interaction.get("baseline")]))
    wanted += [(str(k), _extreme(v, str(k), cells, value_of)) for k, v in (check.get("where") or {}).items()]
    return all(_at(value_of(cell, key), _flat(level)) for key, level in wanted)


def _flat(level: Any) -> Any:
    if isinstance(level, (list, tuple)):
        out: list = []
        for one in level:
            out += list(_flat(one)) if isinstance(one, (list, tuple)) else [one]
        return out
    return level


def cell_reasons(cell: Mapping[str, str], subject: Subject, first_data: str | None) -> list[str]:
    """Why the runs of ``cell`` (the overrides the experiment sets in it) cannot run on ``subject``."""
    from ablate.contract import HYDRA_KEYS

    found = []
    for key, value in cell.items():
        if subject.user_model:
            if key == "model":
                found.append(f"it compares ablate's own families (model=...), not {subject.model}")
            elif key.startswith("model."):
                name = key[len("model."):]
                if "." not in name and name not in HYDRA_KEYS and not subject.takes(name):
                    found.append(f"{subject.model} takes no {name}")
            elif key in SWAPPED_PARTS and not (key == "norm" and canonical(value) == "none") and not subject.takes(key):
                found.append(f"{subject.model} takes no {key}")
        if subject.user_data:
            if key.startswith("data.source."):
                found.append(f"it sets {key}, a setting of the design's own generated data, not of data={subject.data}")
            elif key == "data" and first_data is not None and not same_level(value, first_data):
                found.append(f"it reads a second data set (data={value}); with data={subject.data} only the "
                             f"design's first, data={first_data}, is run, on your data")
    return found


def assess(claim: Mapping[str, Any], cells: Sequence[Mapping[str, str]],
           value_of: Callable[[Mapping[str, str], str], Any], subject: Subject) -> Applicability:
    """Which checks of ``claim`` apply on ``subject``. ``cells`` are the experiment's own grid (the
    overrides each cell sets, the command line's left out); ``value_of(cell, key)`` is a key's
    level in a cell (its override, else the experiment's default)."""
    result = dict(model=subject.model, data=subject.data, n_checks=len(claim.get("checks") or []),
                  statement=str(claim.get("statement") or ""), user_model=subject.user_model, user_data=subject.user_data,
                  replaced_model=subject.user_model and subject.design_model != subject.model)
    if not subject.user_model and not subject.user_data:
        return Applicability(**result)
    needs = claim.get("needs") or {}
    for key, is_user in (("model", subject.user_model), ("data", subject.user_data)):
        if is_user and needs.get(key):
            what = subject.model if key == "model" else f"data={subject.data}"
            return Applicability(**result, claim_reason=f"it needs its own {key}, not {what}: {needs[key]}")
    first_data = _first_data(cells) if subject.user_data else None
    reasons = [cell_reasons(cell, subject, first_data) for cell in cells]
    checks: dict[int, str] = {}
    for i, check in enumerate(claim.get("checks") or []):
        read = [r for cell, r in zip(cells, reasons) if _reads(check, cell, value_of, cells)]
        if any(read):
            checks[i] = _joined(why for r in read for why in r)
    renames = {"data": {first_data: subject.data}} if first_data is not None else {}
    return Applicability(**result, checks=checks, renames=renames)


# -- from composed configs (the sweeper composes them; tests compose them with Hydra's compose API) --


DATA_PINS = ("data", "data.source._target_")   # command-line keys that name data of the user's


def users(cfg: Any, pins: Mapping[str, Any]) -> tuple[bool, bool]:
    """Whether a sweep composed as ``cfg`` runs a model of the user's (``model._target_`` outside
    ablate's families) and whether the command line (``pins``: its ``key -> value``) names data."""
    from omegaconf import OmegaConf

    from ablate.families import builtin_family

    target = OmegaConf.select(cfg, "model._target_", default=None)
    return bool(target) and builtin_family(str(target)) is None, any(k in pins for k in DATA_PINS)


def own_task(task: Sequence[str]) -> list[str]:
    """The command line ``task`` without what names or sets a model or data (``model=``, ``data=``,
    ``data.source.path=``, ...): the experiment as designed."""
    def pinned(key: str) -> bool:
        return key in ("model", "data") or key.startswith(("model.", "data."))

    return [o for o in task if not pinned(o.partition("=")[0].lstrip("+~"))]


def assess_config(cfg: Any, own: Any, pins: Mapping[str, Any],
                  cells: Sequence[Mapping[str, str]]) -> tuple[Applicability | None, list[bool]]:
    """:func:`assess` for a sweep composed as ``cfg`` (the command line applied) and as ``own`` (the
    experiment as designed: :func:`own_task`), its grid ``cells`` (the overrides each sets); also
    which cells can run. (None, every cell) for ablate's own model and data."""
    from omegaconf import OmegaConf

    from ablate.contract import Signature, target_of

    user_model, user_data = users(cfg, pins)
    data, own_data = str(cfg.hydra.runtime.choices.get("data")), str(own.hydra.runtime.choices.get("data"))
    target = str(OmegaConf.select(cfg, "model._target_", default=""))
    try:
        takes = Signature.of(target_of(cfg.model)).takes if user_model else None
    except Exception:  # noqa: BLE001 - a model that cannot be imported: the config check says so, with exit 2
        return None, [True] * len(cells)
    subject = Subject(model=target, data=data, takes=takes,
                      own_data=own_data if user_data and own_data != data else None,
                      design_model=str(OmegaConf.select(own, "model._target_", default="")))
    if not subject.user_model and not subject.user_data:
        return None, [True] * len(cells)
    choices = own.hydra.runtime.choices

    def value_of(cell: Mapping[str, str], key: str) -> Any:
        if key in cell:
            return cell[key]
        if key in choices:
            return choices[key]
        return OmegaConf.select(own, key, default=None, throw_on_resolution_failure=False)

    claim = OmegaConf.to_container(cfg.claim, resolve=True)
    found = assess(claim, cells, value_of, subject)
    first = _first_data(cells) if subject.user_data else None
    return found, [not cell_reasons(c, subject, first) for c in cells]


def _first_data(cells: Sequence[Mapping[str, str]]) -> str | None:
    """The grid's first data set (the one that stands for the user's)."""
    return next((str(c["data"]) for c in cells if "data" in c), None)


def _renamed(check: Mapping[str, Any], renames: Mapping[str, Mapping[str, str]]) -> dict[str, Any]:
    """``check`` with each renamed key's levels (factor sides, interaction sides, where) renamed."""
    check = dict(check)

    def rename(key: str, level: Any) -> Any:
        table = renames.get(key)
        if not table:
            return level
        if isinstance(level, (list, tuple)):
            return [rename(key, one) for one in level]
        for old, new in table.items():
            if same_level(level, old):
                return new
        return level

    factor = check.get("factor")
    if factor is not None:
        for side in ("treatment", "baseline"):
            if side in check:
                check[side] = rename(str(factor), check[side])
    if isinstance(check.get("interaction"), Mapping):
        inter = dict(check["interaction"])
        for side in ("treatment", "baseline"):
            if side in inter:
                inter[side] = rename(str(inter.get("factor")), inter[side])
        check["interaction"] = inter
    if isinstance(check.get("where"), Mapping):
        check["where"] = {k: rename(str(k), v) for k, v in check["where"].items()}
    return check


def describe(applicability: Applicability, claim: Mapping[str, Any]) -> list[str]:
    """Lines for the log: each check that does not apply, and why."""
    checks = list(claim.get("checks") or [])
    if applicability.claim_reason is not None:
        return [f"not applicable: {applicability.claim_reason}"]
    return [f"not applicable: check '{checks[i].get('name', i) if i < len(checks) else i}': {why}"
            for i, why in sorted(applicability.checks.items())]


__all__ = ["APPLICABILITY_JSON", "Applicability", "NEEDS_KEYS", "Subject", "assess", "assess_config", "cell_reasons",
           "describe", "own_task", "read", "users", "write"]
