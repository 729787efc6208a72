"""The claim schema, the first stage of the report: what a ``claim:`` block may say, parsed and
checked by one parser for the config check, the sweeper and the report. Pure Python (numpy for
levels): no pandas, SciPy or torch."""

from ablate.report.spec.claim import (  # noqa: F401
    EQUIVALENCE, NONINFERIORITY, SUPERIORITY, TESTS, CheckSpec, ClaimSpec, Clause, claim_errors, metric_direction,
    parse_check, parse_claim,
)
