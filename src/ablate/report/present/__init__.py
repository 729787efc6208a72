"""See ablate.report: one stage of the report pipeline."""
