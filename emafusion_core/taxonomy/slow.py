"""The slow taxonomy classifier: an LLM asked for the four labels as JSON, through the gateway.

A reply that does not parse, or names a category the taxonomy lacks, is an abstention (logged, and
marked bad in the cache so it is not served again); the fast classifier then decides alone for that
query. Every call is charged, abstentions included. In replay mode it runs from the cache.
"""
from __future__ import annotations

import logging
from typing import Sequence

import numpy as np

from ..execution import Query
from ..llm import LLMClient, LLMError, Request
from ..llm.json_reply import parse_json_object
from .classifiers import Probs
from .schema import AXES, Taxonomy

log = logging.getLogger(__name__)
TEMPLATE_VERSION = "taxonomy-json-v1"
MAX_QUERY_CHARS = 4000  # long prompts are cut: the labels depend on the request's kind, not its full length


def taxonomy_prompt(taxonomy: Taxonomy, text: str) -> list[dict]:
    lines = ["Label the user request below on four axes. For each axis pick exactly one category name.", ""]
    for axis in AXES:
        lines.append(f"{axis}:")
        for cat, sentence in taxonomy.descriptions[axis].items():
            lines.append(f"  - {cat}: {sentence}")
    keys = ", ".join(f'"{a}": "..."' for a in AXES)
    lines += ["", "Request:", '"""', text[:MAX_QUERY_CHARS], '"""', "",
              f"Reply with one JSON object and nothing else: {{{keys}}}"]
    return [{"role": "system", "content": "You classify requests. You reply with JSON only."},
            {"role": "user", "content": "\n".join(lines)}]


def parse_labels(text: str | None, taxonomy: Taxonomy) -> dict[str, str] | None:
    """The four labels from a reply, or None when any is missing or unknown (case and spaces forgiven)."""
    obj = parse_json_object(text)
    if obj is None:
        return None
    labels = {}
    for axis in AXES:
        value = obj.get(axis)
        if not isinstance(value, str):
            return None
        value = value.strip().lower().replace(" ", "_").replace("-", "_")
        if value not in taxonomy.categories[axis]:
            return None
        labels[axis] = value
    return labels


class SlowClassifier:
    def __init__(self, client: LLMClient, model: str, taxonomy: Taxonomy, max_tokens: int = 120):
        self.client, self.model, self.taxonomy = client, model, taxonomy
        self.params = {"temperature": 0.0, "max_tokens": max_tokens}
        self.abstentions = 0

    def request(self, query: Query) -> Request:
        return Request(self.model, taxonomy_prompt(self.taxonomy, query.text), dict(self.params),
                       template_version=TEMPLATE_VERSION)

    def predict_proba(self, queries: Sequence[Query]) -> tuple[Probs, np.ndarray, float]:
        """(one-hot probabilities, parsed-ok mask, USD spent). Abstained rows are uniform and masked out."""
        requests = [self.request(q) for q in queries]
        outcomes = self.client.batch(requests, desc="taxonomy")
        probs = {axis: np.full((len(queries), len(cats)), 1.0 / len(cats))
                 for axis, cats in self.taxonomy.categories.items()}
        ok = np.zeros(len(queries), bool)
        cost = 0.0
        for i, (query, outcome) in enumerate(zip(queries, outcomes)):
            cost += float(getattr(outcome, "cost_usd", 0.0) or 0.0)
            if isinstance(outcome, LLMError):
                log.warning("slow classifier abstains on %s: %s", query.query_id, outcome.kind)
                continue
            labels = parse_labels(outcome.text, self.taxonomy)
            if labels is None:
                log.warning("slow classifier abstains on %s: reply does not parse: %.80r", query.query_id,
                            outcome.text)
                self.client.mark_bad(outcome.key, "taxonomy labels did not parse")
                continue
            ok[i] = True
            for axis, cat in labels.items():
                probs[axis][i] = 0.0
                probs[axis][i, self.taxonomy.index(axis, cat)] = 1.0
        self.abstentions += int((~ok).sum())
        return probs, ok, cost


def label_columns(classifier: SlowClassifier, queries):
    """Taxonomy label columns (task_type, complexity, domain, io_format) for a suite's queries table, from the
    slow classifier: how a user's own suite gets labels when it brings none. Abstentions stay empty; the
    fitting code then leaves those queries out of the taxonomy (they still train the learned router)."""
    import pandas as pd

    from ..execution import Query

    batch = [Query(r.query_id, r.prompt, getattr(r, "question", None) or r.prompt)
             for r in queries.itertuples(index=False)]
    probs, ok, _ = classifier.predict_proba(batch)
    out = pd.DataFrame(index=queries.index)
    for axis in AXES:
        names = np.array(classifier.taxonomy.categories[axis])[probs[axis].argmax(axis=1)]
        out[axis] = np.where(ok, names, None)
    return out
