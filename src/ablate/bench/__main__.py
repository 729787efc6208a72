"""``python -m ablate.bench``: see :mod:`ablate.bench`."""

from ablate.bench.cli import main

main()
