"""Checking a notebook's parameters in its first cell, so a bad value fails at once with a message naming it.

papermill passes `-p name value` as a string when it cannot tell the type, so list parameters written as JSON
(`-p suites '["mysuite"]'`) or as one name (`-p suites mysuite`) are both read. Outputs always land inside the
repository: a relative out_dir is taken from the repository root (so a command means the same from any folder),
and exploring writes under build/figures unless make reproduce says figures/.
"""
from __future__ import annotations

import json
import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


class ParameterError(ValueError):
    """A notebook parameter is invalid; the message starts with its name."""


def _as_list(name: str, value) -> list:
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                value = json.loads(text)
            except json.JSONDecodeError as exc:
                raise ParameterError(f"{name}: not a JSON list ({exc.msg}): {value!r}") from None
        else:
            value = [part.strip() for part in text.split(",") if part.strip()]
    if isinstance(value, tuple):
        value = list(value)
    if not isinstance(value, list) or not value:
        raise ParameterError(f"{name}: expected a non-empty list, got {value!r}")
    return value


def suite_names(value, name: str = "suites") -> list[str]:
    """Suite names that exist: a built-in suite or a folder under data/ holding a suite."""
    from .data import default_data_dir

    names = _as_list(name, value) if not (isinstance(value, str) and name == "suite_name") else [value]
    data_dir = default_data_dir()
    for suite in names:
        if not isinstance(suite, str) or not suite:
            raise ParameterError(f"{name}: suite names are strings, got {suite!r}")
        folder = data_dir / suite
        if not (folder.is_dir() and any(folder.glob("queries.*"))):
            known = sorted(p.name for p in data_dir.iterdir() if p.is_dir() and any(p.glob("queries.*")))
            raise ParameterError(f"{name}: unknown suite {suite!r} (folders under data/ with a queries table: "
                                 f"{', '.join(known)})")
    return names


def seed_list(value, name: str = "seeds") -> list[int]:
    seeds = _as_list(name, value)
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or s < 0]
    if bad:
        raise ParameterError(f"{name}: seeds are integers >= 0, got {bad[0]!r}")
    return seeds


def shares(value, name: str) -> list[float]:
    """A non-empty list of fractions in (0, 1) (labelled shares of a split, say)."""
    values = _as_list(name, value)
    out = []
    for v in values:
        try:
            f = float(v) if not isinstance(v, bool) else float("nan")
        except (TypeError, ValueError):
            f = float("nan")
        if not (0 < f < 1):
            raise ParameterError(f"{name}: expected fractions between 0 and 1, got {v!r}")
        out.append(f)
    return out


def positive_number(value, name: str) -> float:
    """A positive finite number (a budget in USD/query, say)."""
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ParameterError(f"{name}: expected a positive number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        raise ParameterError(f"{name}: expected a positive finite number, got {value!r}")
    return float(value)


def knob_values(value, names: list[str], name: str = "knob") -> tuple | None:
    """None, or one number per knob of the dial (e.g. tau_fam, tau_c, cost_weight, tau_j)."""
    if value is None:
        return None
    values = _as_list(name, value.strip("()") if isinstance(value, str) and value.strip().startswith("(")
                      else value)
    try:
        values = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ParameterError(f"{name}: expected numbers for {names}, got {value!r}") from None
    if len(values) != len(names) or not all(math.isfinite(v) and v >= 0 for v in values):
        raise ParameterError(f"{name}: expected {len(names)} numbers >= 0 for {names}, got {value!r}")
    return tuple(values)


def output_dir(value, name: str = "out_dir") -> Path:
    """The output folder, inside the repository (relative paths from the repository root; created)."""
    if not isinstance(value, (str, Path)) or not str(value).strip():
        raise ParameterError(f"{name}: expected a folder path, got {value!r}")
    path = Path(value)
    path = (path if path.is_absolute() else ROOT / path).resolve()
    if ROOT.resolve() not in (path, *path.parents):
        raise ParameterError(f"{name}: {path} is outside the repository {ROOT}: outputs stay inside it")
    path.mkdir(parents=True, exist_ok=True)
    return path


def clamp_budget(budget: float, low: float, high: float) -> float:
    """A budget within the calibrated grid, with a printed notice when it was outside."""
    if budget < low or budget > high:
        clamped = min(max(budget, low), high)
        print(f"notice: budget_usd {budget:.3g} is outside the calibrated grid [{low:.3g}, {high:.3g}] USD/query: "
              f"using {clamped:.3g}")
        return clamped
    return budget
