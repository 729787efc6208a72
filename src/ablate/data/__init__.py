"""In-memory data: each source returns a :class:`Dataset` of tensors; one DataModule splits and batches it."""

from ablate.data.datamodule import DataModule, IndexLoader
from ablate.data.sources import Dataset

__all__ = ["DataModule", "Dataset", "IndexLoader"]
