"""My data: interleaved spirals, one arm a class, generated with numpy from a seed (nothing is
downloaded).

conf/data/mydata.yaml names this function as ``data.source._target_: mydata.spirals``; the other
keys of ``data.source`` are its arguments. It returns ``(inputs, labels)``: inputs ``(N, F)`` floats,
labels class ids ``0..num_classes-1``. ablate splits them (train/val/test) and batches them.
"""

import numpy as np


def spirals(num_samples=2000, num_classes=3, turns=1.5, noise=0.2, extra_features=6, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(num_classes, size=num_samples)
    radius = rng.uniform(0.1, 1.0, size=num_samples)
    angle = 2 * np.pi * (turns * radius + labels / num_classes)
    points = np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1)
    points += noise * radius[:, None] * rng.normal(size=points.shape) / num_classes
    # a few columns of pure noise, so the model must learn which features matter
    junk = rng.normal(size=(num_samples, extra_features))
    inputs = np.concatenate([points / points.std(axis=0), junk], axis=1).astype(np.float32)
    return inputs, labels
