"""Data layer: the suite schema, validation, loading, splits and prices. Knows nothing of routers."""
from .io import default_data_dir, gpt4_class_model, load_builtin, load_suite, read_table, save_suite
from .prices import PriceTable, count_tokens, with_hidden_reasoning
from .splits import DEFAULT_FRACTIONS, DEFAULT_SEEDS, SPLITS, make_splits, split_ids
from .suite import Suite
from .training import TrainingSet, queries_of, training_set
from .validation import DataValidationError

BUILTIN_SUITES = ("routerbench", "routellm", "zeroeval", "mmlupro")

__all__ = ["BUILTIN_SUITES", "DEFAULT_FRACTIONS", "DEFAULT_SEEDS", "DataValidationError", "PriceTable", "SPLITS",
           "Suite", "TrainingSet", "count_tokens", "default_data_dir", "gpt4_class_model", "load_builtin", "load_suite",
           "make_splits", "queries_of", "read_table", "save_suite", "split_ids", "training_set", "with_hidden_reasoning"]
