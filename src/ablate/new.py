"""``python -m ablate.new DIR``: write a small project of your own into DIR, and print the commands to try.

The project (copied from ``ablate/templates/project``, shipped with the package) runs as it is at
``budget=smoke``::

    DIR/
      README.md                     what is here and the commands
      mymodel.py                    a residual MLP, written to the model contract (docs/models.md)
      mydata.py                     a source function: spirals generated with numpy from a seed (docs/data.md)
      conf/model/mynet.yaml         model=mynet
      conf/data/mydata.yaml         data=mydata
      conf/experiment/my_claim.yaml +experiment=my_claim: one claim, a sweep grid and its checks (docs/claims.md)

DIR must not exist, or be an empty folder: anything else is refused with exit status 2, and nothing
is written (nothing is ever overwritten).
"""

from __future__ import annotations

import argparse
import shlex
import sys
from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; importlib.abc's Traversable works on 3.10 too
    from importlib.abc import Traversable

TEMPLATE = ("templates", "project")
SKIP = ("__pycache__",)


def template() -> Traversable:
    """The project template's folder inside the installed package."""
    folder = files("ablate")
    for part in TEMPLATE:
        folder = folder / part
    return folder


def template_files(folder: Traversable | None = None, prefix: Path = Path()) -> list[tuple[Path, Traversable]]:
    """Every file of the template as (its path relative to the project, the file), sorted."""
    folder = template() if folder is None else folder
    found = []
    for entry in folder.iterdir():
        if entry.name in SKIP or entry.name.endswith(".pyc"):
            continue
        if entry.is_dir():
            found += template_files(entry, prefix / entry.name)
        else:
            found.append((prefix / entry.name, entry))
    return sorted(found, key=lambda item: item[0].as_posix())


def refusal(target: Path) -> str | None:
    """Why a project cannot be written into ``target`` (None when it can: absent, or an empty folder)."""
    if not target.exists():
        return None
    if not target.is_dir():
        return f"{target} exists and is not a folder; give a new folder's name (nothing was written)"
    if any(target.iterdir()):
        return (f"{target} exists and is not empty; give a new or empty folder (nothing was written, "
                "nothing is ever overwritten)")
    return None


def write_project(target: Path) -> list[Path]:
    """Copy the template into ``target`` (absent or empty); returns the files written, relative to it."""
    written = []
    for relative, source in template_files():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "xb") as out:           # "x": never overwrite
            out.write(source.read_bytes())
        written.append(relative)
    return written


def commands(target: str) -> str:
    """The commands to try, as printed after writing the project."""
    smoke = "model=mynet data=mydata budget=smoke"
    lines = [(f"PYTHONPATH=. python -m ablate --config-dir conf {smoke}", "one trial: my model on my data"),
             (f"PYTHONPATH=. python -m ablate --config-dir conf +experiment=my_claim {smoke}", "my claim, judged (seconds)"),
             (f"PYTHONPATH=. python -m ablate.catalogue --config-dir conf {smoke}", "ablate's claims on my model")]
    width = max(len(command) for command, _ in lines)
    return "\n".join([
        f"  cd {shlex.quote(target)}",
        *(f"  {command.ljust(width)}  # {what}" for command, what in lines),
        "",
        "PYTHONPATH=. lets every process ablate starts import mymodel and mydata; the report of my_claim",
        "lands in reports/my_claim/<timestamp>/ (report.html, verdict.json). Drop budget=smoke for budget=quick.",
    ])


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ablate.new",
        description="Write a small project (a model, a data source, their configs and one claim) into DIR.")
    parser.add_argument("dir", metavar="DIR", help="a new (or empty) folder for the project")
    args = parser.parse_args(argv)
    target = Path(args.dir).expanduser()
    if why := refusal(target):
        print(f"ablate.new: {why}", file=sys.stderr)
        return 2
    written = write_project(target)
    print(f"ablate.new: wrote a project into {target}:")
    for relative in written:
        print(f"  {relative.as_posix()}")
    print("\nTry:")
    print(commands(args.dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
