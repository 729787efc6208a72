"""Parts shared by the model families: norm factory, weight initialisation, input adapters."""

from ablate.nn.parts import INIT_SCHEMES, NORMS, Init, Norm

__all__ = ["NORMS", "INIT_SCHEMES", "Init", "Norm"]
