"""Evaluation layer: tables and (later) the replay engine, baselines, metrics and budget calibration."""
from .tables import extra_models_table, models_table

__all__ = ["extra_models_table", "models_table"]
