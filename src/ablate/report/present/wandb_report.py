"""The same report as a W&B Report, with the wandb-workspaces Reports API (pinned 0.4.13).

Two steps, so that construction can be tested offline:

* :func:`build_wandb_report` builds a ``wr.Report`` (verdict text, line plots, a runset filtered
  to the sweep's W&B group) and touches no network;
* :func:`publish` checks that W&B can be reached (API key, not offline, server answers) *before*
  any W&B call, then saves the report and returns its URL.

Entity, project and group come from the records' ``wandb`` field (written by runs that logged to
W&B), else from ``config.logger`` (any node with a ``project`` key, e.g. ``logger.wandb``).
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from typing import Any, Sequence
from urllib.parse import urlparse

from ablate.report.records import tables as collect
from ablate.report.judge import stats
from ablate.report.judge.claim import judge_claim
from ablate.report.judge.results import ClaimResult
from ablate.report.judge.sweep import claim_metrics
from ablate.report.present.text import text_of
from ablate.results import is_ok

DEFAULT_X_AXIS = "epoch"


class WandbUnavailable(RuntimeError):
    """W&B cannot be used here (offline, no API key, server unreachable, runs not on W&B)."""


@dataclass(frozen=True)
class WandbTarget:
    entity: str | None
    project: str
    group: str | None
    run_ids: list[str] = field(default_factory=list)


def _logger_wandb(config: dict[str, Any]) -> dict[str, Any]:
    """The first dict under ``config.logger`` (or ``config.wandb``) that names a ``project``."""
    stack = [config.get("logger"), config.get("wandb")]
    while stack:
        node = stack.pop(0)
        if isinstance(node, dict):
            if isinstance(node.get("project"), str) and node["project"]:
                return node
            stack.extend(v for _, v in sorted(node.items()) if isinstance(v, dict))
    return {}


def wandb_target(records: Sequence[dict[str, Any]]) -> WandbTarget:
    """Where the sweep's runs live on W&B; raises :class:`WandbUnavailable` if none logged there."""
    found: dict[str, list] = {"entity": [], "project": [], "group": []}
    run_ids: list[str] = []
    for record in records:
        info = record.get("wandb") if isinstance(record.get("wandb"), dict) else {}
        fallback = _logger_wandb(record.get("config") or {})
        for key in found:
            value = info.get(key) or fallback.get(key)
            if value:
                found[key].append(str(value))
        if info.get("id"):
            run_ids.append(str(info["id"]))

    def common(key: str) -> str | None:
        values = sorted(set(found[key]), key=lambda v: (-found[key].count(v), v))
        return values[0] if values else None

    project = common("project")
    if not project:
        raise WandbUnavailable(
            "these runs did not log to W&B: no record has a 'wandb' field and no config.logger names a "
            "project. Rerun the sweep with the W&B logger (e.g. logger=wandb) to get a W&B Report.")
    return WandbTarget(common("entity") or os.environ.get("WANDB_ENTITY") or None, project,
                       common("group"), sorted(set(run_ids)))


# ---------------------------------------------------------------------------------------------
# Construction (offline)
# ---------------------------------------------------------------------------------------------


def _verdict_markdown(claims: Sequence[ClaimResult]) -> str:
    lines: list[str] = []
    for claim in claims:
        lines.append(f"### Claim: {claim.name} — **{claim.verdict}**")
        if claim.statement:
            lines.append(f"> {claim.statement}")
        lines.append("")
        lines.append(f"_{claim.reason}_")
        lines.append("")
        for clause in claim.clauses:
            why = f" — {clause.clause.not_tested}" if clause.verdict == stats.NOT_TESTED and clause.clause.not_tested else ""
            why = f" — {clause.reason}" if clause.verdict == stats.NOT_APPLICABLE and clause.reason else why
            lines.append(f"- {clause.clause.text or clause.clause.name}: **{clause.verdict}**{why}")
        if claim.scope:
            lines.append("")
            lines.append("Scope: " + "; ".join(f"{k}: {v}" for k, v in claim.scope.items()))
        lines.append("")
        for i, check in enumerate(claim.checks, 1):
            text = text_of(check, claim.budget)
            lines.append(f"{i}. **{check.spec.name}** ({text.test_label}): **{text.verdict_label}** — {text.detail()}  ")
            lines.append(f"   compared: {text.setup()}; p against {stats.fmt(check.p_against, 2)} raw, "
                         f"{stats.fmt(check.p_holm, 2)} Holm; detectable |Δ| ≥ {stats.fmt(check.detectable, 2)}")
        lines.append("")
    return "\n".join(lines).strip() + "\n"


def _metrics_to_plot(records: Sequence[dict], claims: Sequence[ClaimResult]) -> list[str]:
    present = set(collect.metric_names(records))
    extra = [m for m in ("train/loss", "val/loss", "val/acc", "grad/first_layer") if m in present]
    return list(dict.fromkeys([*claim_metrics(claims), *extra]))


def build_wandb_report(records: Sequence[dict[str, Any]], claims: Sequence[ClaimResult] | None = None, *,
                       entity: str | None = None, project: str | None = None, group: str | None = None,
                       title: str | None = None, sweep_label: str = "", x_axis: str = DEFAULT_X_AXIS):
    """A ``wr.Report`` with a markdown block per claim (each verdict with its numbers), line plots of
    the claim's metrics per epoch grouped by the check factor, final metric vs the swept factors,
    and a runset filtered to the sweep's W&B group. Makes no network call (``save`` does)."""
    import wandb_workspaces.reports.v2 as wr
    from wandb_workspaces import expr

    records = list(records)
    if claims is None:
        claims = [judge_claim(records, c) for c in collect.claims(records)]
    target = wandb_target(records) if not (project and entity) else None
    entity = entity or (target.entity if target else None)
    project = project or (target.project if target else None)
    group = group if group is not None else (target.group if target else None)
    run_ids = target.run_ids if target else []
    if not entity:
        raise WandbUnavailable("the W&B entity is unknown: the records do not name one; set WANDB_ENTITY "
                               "or pass --wandb-entity")
    factors = collect.swept_factors(records)
    experiments = sorted({str(r["experiment"]) for r in records if r.get("experiment")})
    subject = ", ".join(experiments) or (claims[0].name if claims else "sweep")

    if group:
        filters = [expr.Metric("Group") == group]
        runset_name = f"sweep {group}"
    elif run_ids:
        filters = [expr.Metric("ID").isin(run_ids)]
        runset_name = f"{len(run_ids)} runs of {subject}"
    else:
        filters = []
        runset_name = f"project {project}"
    line_factor = next((c.spec.factor for claim in claims for c in claim.checks if c.spec.factor), None)
    runset = wr.Runset(entity=entity, project=project, name=runset_name, filters=filters,
                       groupby=[f"config.{f}" for f in factors])

    panels: list = []
    for metric in _metrics_to_plot(records, claims):
        # The runset groups runs by cell (all swept factors), so each line is a cell's mean over
        # seeds with its standard-error band, as in the local training-curve figure.
        panels.append(wr.LinePlot(
            title=f"{metric} per {x_axis} (mean ± s.e. over seeds)", x=x_axis, y=[metric],
            groupby_aggfunc="mean", groupby_rangefunc="stderr",
            log_y=True if metric.startswith("grad/") else None,
        ))
    for claim in claims:
        x = claim.plot.get("x") or next((f for f in factors if f != line_factor), None)
        metric = claim.plot.get("metric") or next((c.spec.metric for c in claim.checks if c.spec.metric), None)
        if x and metric:
            panels.append(wr.ScatterPlot(title=f"final {metric} vs {x}", x=wr.Config(x),
                                         y=wr.SummaryMetric(metric), log_x=bool(claim.plot.get("logx")) or None,
                                         log_y=bool(claim.plot.get("logy")) or None))
    if "optimizer.lr" in factors:
        metric = next((c.spec.metric for claim in claims for c in claim.checks if c.spec.metric), None)
        if metric:
            panels.append(wr.ScatterPlot(title=f"final {metric} vs learning rate", x=wr.Config("optimizer.lr"),
                                         y=wr.SummaryMetric(metric), log_x=True))

    summary = (f"**{len(records)} runs** ({collect.status_text(records)})"
               + (f" from `{sweep_label}`" if sweep_label else "")
               + (f"; swept: {', '.join(f'`{f}`' for f in factors)}" if factors else "")
               + ". Each verdict comes from a Welch confidence interval of the difference over seeds: "
               "supported when it clears the claim's bound, not supported when it lies wholly on the wrong "
               "side (Holm-corrected over the claim's checks), else inconclusive; see the local report's "
               "reading guide.")
    bad = [r for r in collect.sort_records(records, factors) if not is_ok(r)]
    blocks: list = [wr.MarkdownBlock(text=summary)]
    if claims:
        blocks.append(wr.MarkdownBlock(text=_verdict_markdown(claims)))
    else:
        blocks.append(wr.MarkdownBlock(text="These runs declare no claim, so there is no verdict."))
    blocks.append(wr.H2(text="Measurements"))
    blocks.append(wr.PanelGrid(runsets=[runset], panels=panels))
    if bad:
        rows = "\n".join(f"| `{r.get('run_id')}` | {r.get('status')} | "
                         + " ".join(str(r.get("error") or "").split())[:200].replace("|", "\\|") + " |"
                         for r in bad)
        blocks.append(wr.H2(text="Runs that did not finish"))
        blocks.append(wr.MarkdownBlock(text="| run | status | error |\n|---|---|---|\n" + rows))
    overall = stats.combine([c.verdict for c in claims]) if claims else "no claim"
    return wr.Report(entity=entity, project=project, title=(title or f"ablate: {subject} — {overall}")[:128],
                     description=claims[0].statement if claims else "", blocks=blocks, width="fluid")


# ---------------------------------------------------------------------------------------------
# Publishing (network)
# ---------------------------------------------------------------------------------------------


def _settings():
    try:
        from wandb.sdk import wandb_setup

        return wandb_setup.singleton().settings
    except Exception:  # pragma: no cover - depends on the wandb version
        return None


def _api_key(base_url: str) -> str | None:
    """The configured API key (env, session, .netrc, settings file) without any network call."""
    if os.environ.get("WANDB_API_KEY"):
        return os.environ["WANDB_API_KEY"]
    try:
        from wandb.sdk.lib import wbauth

        auth = wbauth.session_credentials(host=base_url)
        if auth is not None and getattr(auth, "api_key", None):
            return auth.api_key
        key = wbauth.read_netrc_auth(host=base_url)
        if key:
            return key
    except Exception:  # pragma: no cover - an unparsable .netrc is "no key" here
        pass
    settings = _settings()
    return getattr(settings, "api_key", None) if settings is not None else None


def check_wandb_ready(timeout: float = 5.0) -> str:
    """Raise :class:`WandbUnavailable` unless W&B is online, has an API key and its server answers
    a TCP connection within ``timeout`` seconds; return the server URL. Fails in seconds, never
    hangs in the SDK's retry loop."""
    mode = os.environ.get("WANDB_MODE", "").strip().lower()
    if mode in ("offline", "dryrun", "disabled") or os.environ.get("WANDB_DISABLED", "").lower() in ("1", "true"):
        raise WandbUnavailable(f"W&B is switched off here (WANDB_MODE={mode or 'disabled'}); a W&B Report "
                               "needs the W&B server. Unset WANDB_MODE and run `wandb login`, or drop --wandb.")
    settings = _settings()
    base_url = os.environ.get("WANDB_BASE_URL") or getattr(settings, "base_url", None) or "https://api.wandb.ai"
    if settings is not None and getattr(settings, "_offline", False):
        raise WandbUnavailable("W&B is in offline mode (wandb settings); run `wandb online` or drop --wandb.")
    if not _api_key(base_url):
        raise WandbUnavailable("no W&B API key: set WANDB_API_KEY or run `wandb login`, or drop --wandb "
                               "(the local report does not need W&B).")
    url = urlparse(base_url)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except OSError as exc:
        raise WandbUnavailable(f"cannot reach the W&B server {base_url} ({exc}); check the network, or "
                               "drop --wandb") from exc
    return base_url


def publish(report, *, draft: bool = False, timeout: float = 5.0) -> str:
    """Save ``report`` (from :func:`build_wandb_report`) to W&B and return its URL."""
    check_wandb_ready(timeout)
    try:
        report.save(draft=draft)
        return report.url
    except Exception as exc:  # the SDK raises many kinds; the user needs one clear line
        raise WandbUnavailable(f"W&B refused the report: {exc}") from exc
