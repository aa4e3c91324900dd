"""What `emafusion data check` says about a valid suite beyond validity: what will be weak when it is evaluated.

Warnings, never errors: a suite without taxonomy labels still runs every baseline and the learned router,
and a suite whose models cost the same is still compared on accuracy. The user should know before a run.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from ..frontier import cost_range_too_narrow
from .io import default_data_dir, load_builtin, load_suite
from .splits import make_splits, split_ids
from .suite import Suite
from .validation import DataValidationError

def resolve_suite(name_or_path: str | Path, data_dir: str | Path | None = None) -> Suite:
    """A suite from a folder path, or by name from data/ (what the notebooks' `suites` parameter takes),
    refused if it cannot be evaluated (check_splits).

    An existing folder wins; else a bare name is looked up under data/ (an unknown name lists the known ones)."""
    path = Path(name_or_path)
    base = Path(data_dir) if data_dir else default_data_dir()
    if path.is_dir():
        suite = load_suite(path)
    elif len(path.parts) == 1:
        suite = load_builtin(path.name, base)  # raises for an unknown suite, with the list of known ones
    else:
        suite = load_suite(path)  # raises: no such suite folder
    check_splits(suite)
    return suite


def check_splits(suite: Suite, seed: int = 0) -> None:
    """Refuse a suite whose splits leave calibrate or test empty: nothing to choose knobs on or to report.
    Contaminated queries always go to fit, so a suite marked contaminated throughout has neither."""
    counts = make_splits(suite.queries, suite.name, seed).value_counts()
    empty = [part for part in ("calibrate", "test") if counts.get(part, 0) == 0]
    if not empty:
        return
    n, n_cont = len(suite.queries), int(suite.queries["contaminated"].sum())
    source = suite.sources.get("queries", f"{suite.name}/queries")
    raise DataValidationError(source, "contaminated" if n_cont else None, None,
                              f"the fit/calibrate/test splits (seed {seed}: 50/20/30 of each benchmark's "
                              f"non-contaminated queries) leave {' and '.join(empty)} empty: {n} queries, {n_cont} "
                              f"marked contaminated (always fit); add queries or mark fewer as contaminated")


@dataclass
class LabelCoverage:
    """How the fit split's queries (seed 0) get taxonomy labels: by the suite's own columns, by the documented
    rules, by both (some axes each), or not at all; and which benchmarks no rule covers."""

    n_fit: int
    own: int
    rules: int
    mixed: int
    none: int
    own_columns: list[str] = field(default_factory=list)
    unmatched_benchmarks: list[str] = field(default_factory=list)

    @property
    def labelled(self) -> int:
        return self.own + self.rules + self.mixed


def label_coverage(suite: Suite, seed: int = 0) -> LabelCoverage:
    from ..taxonomy import AXES, RuleLabeller, default_rules, default_taxonomy

    fit = suite.queries.set_index("query_id").loc[list(split_ids(make_splits(suite.queries, suite.name, seed),
                                                                 "fit"))]
    labeller = RuleLabeller(default_taxonomy(), default_rules())
    frame = fit[["benchmark", "category", "answer_format"]].reset_index(drop=True)
    by_rule = labeller.label(frame)
    own_columns = [a for a in AXES if a in fit.columns]
    own = pd.DataFrame({a: (fit[a].reset_index(drop=True) if a in fit.columns else pd.Series(None, index=frame.index))
                        for a in AXES})
    own_present = own.notna()
    complete = (own_present | by_rule.notna()).all(axis=1)
    all_own = own_present.all(axis=1)
    any_own = own_present.any(axis=1)
    n_own = int((complete & all_own).sum())
    n_mixed = int((complete & ~all_own & any_own).sum())
    n_rules = int((complete & ~any_own).sum())
    benches = sorted(suite.queries["benchmark"].astype(str).unique())
    unmatched = [b for b in benches
                 if not any(labeller.covers(b, c) for c in suite.queries.loc[suite.queries["benchmark"] == b,
                                                                               "category"].unique())]
    return LabelCoverage(len(fit), n_own, n_rules, n_mixed, len(fit) - n_own - n_rules - n_mixed, own_columns,
                         unmatched)


def identical_price_groups(suite: Suite) -> list[list[str]]:
    """Groups of two or more models with the same list prices (input and output), or, without price columns,
    the same mean recorded USD/query: a router cannot trade cost against quality between them."""
    m = suite.models
    cols = [c for c in ("input_usd_per_mtok", "output_usd_per_mtok") if c in m.columns]
    if cols and m[cols].notna().all(axis=1).all():
        keys = [" ".join(f"{v:.12g}" for v in row) for row in m[cols].astype(float).to_numpy()]
        names = list(m["model"])
    else:
        mean = suite.costs.mean(axis=0)
        keys, names = [f"{v:.12g}" for v in mean.to_numpy()], list(mean.index)
    groups: dict[str, list[str]] = {}
    for key, name in zip(keys, names):
        groups.setdefault(key, []).append(str(name))
    return [sorted(g) for g in groups.values() if len(g) > 1]


def suite_warnings(suite: Suite) -> list[str]:
    """Plain-language warnings of what will be weak when this suite is evaluated (empty when nothing is)."""
    out = []
    cov = label_coverage(suite)
    share = cov.labelled / max(cov.n_fit, 1)
    how = (f"{cov.own} by the suite's own label columns ({', '.join(cov.own_columns) or 'none'}), {cov.rules} by "
           f"the documented rules, {cov.mixed} by both, {cov.none} not at all")
    if cov.labelled == 0:
        out.append(f"no fit query has taxonomy labels ({how}): the taxonomy and hybrid EMAFusion variants will be "
                   f"reported unavailable; the baselines and the learned router still run. Bring columns task_type, "
                   f"complexity, domain, io_format, or label with the slow classifier (data/README.md)")
    elif share < 0.9:
        out.append(f"only {cov.labelled} of {cov.n_fit} fit queries ({share:.0%}) get taxonomy labels ({how}): the "
                   f"taxonomy router is fitted on those alone")
    if cov.unmatched_benchmarks and cov.none:
        out.append(f"no labelling rule covers benchmark(s) {cov.unmatched_benchmarks} (rules match names case- "
                   f"and punctuation-insensitively; see emafusion_core/taxonomy/labelling_rules.yaml)")
    for group in identical_price_groups(suite):
        out.append(f"models with identical prices: {', '.join(group)}: routing between them cannot save cost")
    mean = suite.costs.mean(axis=0)
    lo, hi = float(mean.min()), float(mean.max())
    if cost_range_too_narrow(lo, hi):
        out.append(f"mean cost per query spans only [{lo:.3g}, {hi:.3g}] USD across models: no budget axis; "
                   f"`emafusion eval` and the notebooks compare policies on accuracy only (AIQ not defined)")
    return out
