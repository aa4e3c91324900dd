"""Taxonomy layer: axes and categories, labelling, fast/slow/fused classifiers, suitability, TaxonomyRouter."""
from .classifiers import FastClassifier, confidence, fuse, top_labels
from .labelling import RuleLabeller, labels_for
from .router import TaxonomyDecision, TaxonomyRouter
from .schema import AXES, Taxonomy, TaxonomyError, default_rules, default_taxonomy
from .suitability import SuitabilityTable

__all__ = ["AXES", "FastClassifier", "RuleLabeller", "SuitabilityTable", "Taxonomy", "TaxonomyDecision",
           "TaxonomyError", "TaxonomyRouter", "confidence", "default_rules", "default_taxonomy", "fuse",
           "labels_for", "top_labels"]
