"""The words the parts' tables are written in: what one config value must be, and the message that
names the field and what would work when it is not.

Torch-free, like the tables written in it (:mod:`ablate.families`, :mod:`ablate.inputs`): the config
check (:mod:`ablate.validate`) reads them in the process that launches a sweep, which never trains.
The parts check their own arguments with the same :class:`Check` (:meth:`Check.require`), so a bad
value reads the same whether the config check or the constructor finds it.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any, Callable, Mapping

from omegaconf import OmegaConf


def is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


@dataclass(frozen=True)
class Check:
    """What the value of one field must be: ``ok(value)``; ``says`` completes ``<field>=<value> is
    invalid``. An absent (or null) value passes unless ``required``. ``valid``: a choice's values."""

    ok: Callable[[Any], bool]
    says: str
    required: bool = False
    valid: tuple[str, ...] = ()

    def error(self, path: str, value: Any) -> str | None:
        if value is None and not self.required:
            return None
        return None if self.ok(value) else f"{path}={value!r} is invalid{self.says}"

    def require(self, path: str, value: Any) -> None:
        """Raise :class:`ValueError` with the config check's message: for a part's own arguments."""
        if (message := self.error(path, value)) is not None:
            raise ValueError(message)


def required(check: Check) -> Check:
    return replace(check, required=True)


def integer(at_least: int = 1) -> Check:
    return Check(lambda v: is_int(v) and v >= at_least, f": it must be an integer >= {at_least}")


def number(above: float | None = None, at_least: float | None = None) -> Check:
    """A number ``> above`` or ``>= at_least``."""
    if above is not None:
        return Check(lambda v: is_number(v) and v > above, f": it must be a number > {above}")
    return Check(lambda v: is_number(v) and v >= at_least, f": it must be a number >= {at_least}")


def in_range(low: float, high: float, high_open: bool = True) -> Check:
    return Check(lambda v: is_number(v) and low <= v and (v < high if high_open else v <= high),
                 f": it must be in [{low}, {high}{')' if high_open else ']'}")


def one_of(*valid: str) -> Check:
    return Check(lambda v: str(v) in valid, f"; valid values: {', '.join(valid)}", valid=valid)


def distinct_list(item: Callable[[Any], bool], says: str) -> Check:
    """A non-empty list of distinct values, each ``item(value)``."""
    def ok(values: Any) -> bool:
        items = list(values) if OmegaConf.is_list(values) or isinstance(values, (list, tuple)) else None
        return bool(items) and all(item(v) for v in items) and len(set(items)) == len(items)

    return Check(ok, says)


BOOLEAN = Check(lambda v: isinstance(v, bool), "; valid values: true, false")
POSITIVE = integer(1)
FRACTION = in_range(0.0, 1.0)            # a probability that must leave something: dropout, smoothing


def field_errors(node: Any, fields: Mapping[str, Check], prefix: str = "") -> list[str]:
    """Each field of ``fields`` that ``node`` (a config, or a mapping) holds a bad value for, one message
    each, its path ``prefix.field``."""
    found = []
    for key, check in fields.items():
        value = OmegaConf.select(node, key, default=None) if OmegaConf.is_config(node) else node.get(key)
        if (message := check.error(f"{prefix}.{key}" if prefix else key, value)) is not None:
            found.append(message)
    return found


def unknown_fields(node: Any, fields: Mapping[str, Check], prefix: str, part: str,
                   also: tuple[str, ...] = ()) -> list[str]:
    """A message for each key of ``node`` that part ``part`` (``model=mlp``) does not take: ``fields``,
    ``also`` and Hydra's own keys are what it takes."""
    taken = (*fields, *also, "_target_", "_partial_", "_args_", "_convert_", "_recursive_")
    return [f"{prefix}.{key} is not a field of {part}; its fields: {', '.join(fields)}"
            for key in node if key not in taken]


def merged(*tables: Mapping[str, Check]) -> dict[str, Check]:
    """Every field of ``tables`` (one field name means one thing: a name two tables check differently
    is a mistake, and an error here)."""
    out: dict[str, Check] = {}
    for table in tables:
        for key, check in table.items():
            if out.setdefault(key, check) is not check:
                raise ValueError(f"field {key!r} is checked two ways")
    return out


def builtin(target: Any, table: Mapping[str, Any], module: str, own_modules: bool = False) -> Any:
    """The ``table`` entry of the part ``target`` names, read without importing it: ``module.<Name>``
    (or, with ``own_modules``, ``module.<name>.<Name>``, the module the part is defined in); None for
    any other target."""
    home, _, name = str(target).rpartition(".")
    if name in table and (home == module or (own_modules and home == f"{module}.{name.lower()}")):
        return table[name]
    return None
