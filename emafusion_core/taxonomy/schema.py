"""The taxonomy: four axes, each with documented categories, loaded from plain data (taxonomy.yaml)."""
from __future__ import annotations

from dataclasses import dataclass
from importlib import resources

import numpy as np
import yaml

AXES = ("task_type", "complexity", "domain", "io_format")


class TaxonomyError(ValueError):
    """A taxonomy or labelling-rules document is malformed; the message names the key."""


@dataclass(frozen=True)
class Taxonomy:
    categories: dict[str, tuple[str, ...]]  # axis -> categories, in a fixed order
    descriptions: dict[str, dict[str, str]]  # axis -> category -> one sentence

    @classmethod
    def from_dict(cls, doc: dict) -> "Taxonomy":
        axes = doc.get("axes") if isinstance(doc, dict) else None
        if not isinstance(axes, dict):
            raise TaxonomyError("taxonomy: top-level key 'axes' must map axis names to categories")
        unknown = sorted(set(axes) - set(AXES))
        missing = [a for a in AXES if a not in axes]
        if unknown or missing:
            raise TaxonomyError(f"taxonomy: axes must be exactly {AXES}; unknown {unknown}, missing {missing}")
        categories, descriptions = {}, {}
        for axis in AXES:
            cats = axes[axis]
            if not isinstance(cats, dict) or len(cats) < 2:
                raise TaxonomyError(f"taxonomy: axes.{axis} must map at least two categories to a sentence")
            for name, sentence in cats.items():
                if not isinstance(sentence, str) or not sentence.strip():
                    raise TaxonomyError(f"taxonomy: axes.{axis}.{name} needs a one-sentence description")
            categories[axis] = tuple(cats)
            descriptions[axis] = dict(cats)
        return cls(categories, descriptions)

    def index(self, axis: str, category: str) -> int:
        try:
            return self.categories[axis].index(category)
        except (KeyError, ValueError):
            raise TaxonomyError(f"unknown category {category!r} on axis {axis!r}; "
                                f"expected one of {self.categories.get(axis)}") from None

    def one_hot(self, labels) -> dict[str, np.ndarray]:
        """Hard labels (a DataFrame with one column per axis) as probability matrices."""
        out = {}
        for axis in AXES:
            idx = np.array([self.index(axis, c) for c in labels[axis]])
            m = np.zeros((len(idx), len(self.categories[axis])), np.float64)
            m[np.arange(len(idx)), idx] = 1.0
            out[axis] = m
        return out


def _package_yaml(name: str) -> dict:
    return yaml.safe_load(resources.files(__package__).joinpath(name).read_text())


def default_taxonomy() -> Taxonomy:
    return Taxonomy.from_dict(_package_yaml("taxonomy.yaml"))


def default_rules() -> dict:
    return _package_yaml("labelling_rules.yaml")
