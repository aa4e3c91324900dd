"""Labels for queries from their source metadata, by documented rules (labelling_rules.yaml).

Rules are data, not routing logic: they say how the known benchmarks' queries are labelled for fitting
the classifiers and the suitability table. Queries no rule covers get no rule label (NaN); a user's
suite can bring its own label columns (task_type, complexity, domain, io_format) instead.

Benchmark and category names match case- and punctuation-insensitively (`normalise_name`): "ARC_Challenge",
"ARC Challenge" and "arc-challenge" are one benchmark, "computer_science" and "Computer Science" one category.
"""
from __future__ import annotations

import re

import pandas as pd

from .schema import AXES, Taxonomy, TaxonomyError


def normalise_name(name) -> str:
    """A benchmark or category name as rules compare it: lower case, letters and digits only."""
    return re.sub(r"[^0-9a-z]+", "", str(name or "").lower())


class RuleLabeller:
    def __init__(self, taxonomy: Taxonomy, rules: dict):
        self.taxonomy = taxonomy
        if not isinstance(rules, dict) or not isinstance(rules.get("rules"), list):
            raise TaxonomyError("labelling rules: top-level key 'rules' must be a list")
        self.rules = rules["rules"]
        self.prefix_complexity = dict(rules.get("complexity_by_category_prefix", {}))
        self.default_complexity = rules.get("complexity_default", "medium")
        for i, rule in enumerate(self.rules):
            if "benchmark" not in rule or not isinstance(rule.get("labels"), dict):
                raise TaxonomyError(f"labelling rules: rules[{i}] needs 'benchmark' and a 'labels' mapping")
            for axis, category in rule["labels"].items():
                if axis not in AXES:
                    raise TaxonomyError(f"labelling rules: rules[{i}].labels has unknown axis {axis!r}")
                taxonomy.index(axis, category)  # raises on an unknown category

    def _match(self, benchmark: str, category: str) -> dict | None:
        benchmark, category = normalise_name(benchmark), normalise_name(category)
        for rule in self.rules:
            if normalise_name(rule["benchmark"]) != benchmark:
                continue
            wanted = rule.get("category")
            if wanted is None:
                return rule["labels"]
            wanted = wanted if isinstance(wanted, list) else [wanted]
            if category in {normalise_name(w) for w in wanted}:
                return rule["labels"]
        return None

    def covers(self, benchmark: str, category: str = "") -> bool:
        """Whether some rule labels a query of this benchmark and category."""
        return self._match(benchmark, category) is not None

    def _complexity(self, category: str) -> str:
        category = normalise_name(category)
        for prefix, level in self.prefix_complexity.items():
            if category.startswith(normalise_name(prefix)):
                return level
        return self.default_complexity

    def label(self, queries: pd.DataFrame) -> pd.DataFrame:
        """One row per query, one column per axis; rows no rule covers are all missing."""
        rows = []
        for bench, cat, fmt in queries[["benchmark", "category", "answer_format"]].itertuples(index=False):
            labels = self._match(bench, cat or "")
            if labels is None:
                rows.append({axis: None for axis in AXES})
                continue
            row = dict(labels)
            row.setdefault("complexity", self._complexity(cat or ""))
            row.setdefault("io_format", fmt)
            rows.append({axis: row[axis] for axis in AXES})
        return pd.DataFrame(rows, index=queries.index, columns=list(AXES))


def labels_for(queries: pd.DataFrame, labeller: RuleLabeller) -> pd.DataFrame:
    """The suite's own label columns where it has them, else the rules' labels."""
    labels = labeller.label(queries)
    for axis in AXES:
        if axis in queries.columns:
            own = queries[axis]
            labels[axis] = own.where(own.notna(), labels[axis])
    return labels
