"""Bringing rank 0's measurements back from spawned workers (``strategy=ddp_spawn``, ``ddp_fork``,
``ddp_notebook``).

Under those strategies ``fit`` and ``test`` run in worker processes, and Lightning sends back only
the weights, the trainer state and ``callback_metrics``: the callbacks of the calling process
(History, Throughput, the probes: everything the run record is made of) would stay empty.
:class:`CarryState` uses the callbacks' own checkpoint interface for the trip: in a worker, rank 0
writes every callback's ``state_dict()`` to a file when fit (or test) ends; back in the calling
process, :meth:`CarryState.restore` hands each state to the same callback's ``load_state_dict``.
"""

from __future__ import annotations

import os
from pathlib import Path

import lightning as L
import torch


class CarryState(L.Callback):
    """Put it last in the Trainer's callbacks; call :meth:`restore` after ``fit`` and ``test``."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder) / ".callback-states.pt"
        self.home = os.getpid()          # the process that built the Trainer

    def _dump(self, trainer: L.Trainer) -> None:
        if os.getpid() == self.home or not trainer.is_global_zero:
            return                       # not a spawned worker (or not rank 0): nothing to carry
        states = [callback.state_dict() for callback in trainer.callbacks]
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        torch.save(states, tmp)
        os.replace(tmp, self.path)

    def on_fit_end(self, trainer, pl_module):
        self._dump(trainer)

    def on_test_end(self, trainer, pl_module):
        self._dump(trainer)

    def restore(self, trainer: L.Trainer) -> bool:
        """Load what a spawned rank 0 left, if anything; True when it did."""
        if not self.path.exists():
            return False
        states = torch.load(self.path, weights_only=False)   # written just now by our own rank 0
        self.path.unlink()
        # the workers' trainer was a pickled copy of this one: the same callbacks, in the same order
        for callback, state in zip(trainer.callbacks, states):
            if state:
                callback.load_state_dict(state)
        return True
