"""``python -m ablate.bench``: what training through ablate costs, and how fast it runs where users run it.

One benchmark per run, picked by its flag (each module's docstring says how it measures):

* (default) :mod:`ablate.bench.fit`: ablate's fit time against a hand-written PyTorch loop, epochs in
  lockstep; ``--floor`` adds Lightning's own floor. Last line ``ablate/raw fit-time ratio: X.XX``.
* ``--sweep`` (:mod:`ablate.bench.sweep`): also Hydra's basic launcher against ``hydra/launcher=joblib``.
* ``--seeds K`` (:mod:`ablate.bench.seeds`): K seeds as K runs against one vectorized job. Last line
  ``vectorized speed-up for K seeds: X.XX``.
* ``--load`` (:mod:`ablate.bench.load`): a smoke experiment idle and with one core busy, at the
  default thread policy and at fixed thread counts, side by side.
* ``--catalogue`` (:mod:`ablate.bench.catalogue`): the catalogue with ``--jobs 1`` against its default.
* ``--gpu`` (:mod:`ablate.bench.gpu`): every GPU measurement in one run; each part the machine
  cannot run is reported ``SKIPPED`` with its reason.

Two tools of their own: ``python -m ablate.bench.phases <overrides>`` (:mod:`ablate.bench.phases`) runs
one ``python -m ablate`` command with a CPU-time counter around each phase (composing, each job's
build, fit, validation, checkpoints, records, the report) and prints where its time went;
``python -m ablate.bench.same_records A B`` (:mod:`ablate.bench.same_records`) says whether two runs of
one sweep wrote the same records and verdicts, every number bit for bit.
"""

from ablate.bench.cli import main
from ablate.bench.common import compose, run_ablate, timed_fit
from ablate.bench.fit import RawLoop, fit_bench, run_floor, run_lockstep, run_raw

__all__ = ["RawLoop", "compose", "fit_bench", "main", "run_ablate", "run_floor", "run_lockstep", "run_raw",
           "timed_fit"]
