"""In-memory data: each source returns a :class:`Dataset` of tensors; one DataModule splits and batches it."""

from ablate.data.datamodule import BatchGroup, DataModule, IndexLoader, MemberBatch, batch_rows
from ablate.data.sources import Dataset

__all__ = ["BatchGroup", "DataModule", "Dataset", "IndexLoader", "MemberBatch", "batch_rows"]
