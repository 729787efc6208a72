"""``ablate.probes.gradients``: the sign convention of the per-layer gradient slope."""

from __future__ import annotations

import math

import pytest
import torch

from ablate.probes.gradients import log_slope


def test_a_gradient_that_shrinks_towards_the_input_has_a_positive_slope():
    vanishing = torch.tensor([[0.001], [0.01], [0.1], [1.0]])        # input layer first
    assert log_slope(vanishing).item() == pytest.approx(1.0)         # one decade per layer
    assert log_slope(vanishing.flip(0)).item() == pytest.approx(-1.0)  # exploding towards the input


def test_an_underflowed_layer_gives_nan_per_member():
    norms = torch.tensor([[0.0, 0.1], [1.0, 1.0]])                    # member 0's first layer underflowed
    slopes = log_slope(norms)
    assert math.isnan(slopes[0].item()) and slopes[1].item() == pytest.approx(1.0)
