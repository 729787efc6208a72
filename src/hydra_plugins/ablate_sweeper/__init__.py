"""``hydra/sweeper: ablate``: Hydra's grid sweep, plus sequential seeds for experiments with a claim.

Hydra instantiates only plugins that live in the ``hydra_plugins`` namespace package; the sweeper
itself is :class:`hydra_plugins.ablate_sweeper.ablate_sweeper.AblateSweeper`.
"""
