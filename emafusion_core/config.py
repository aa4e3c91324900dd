"""The one YAML file that configures a live EMAFusion: model pool, routers, cascade, judges, budget.

Plain data in, validated objects out; every error names the key (e.g. `models[1].price.input`), so a typo
is fixed in one look. API keys are never in the file: a model names the environment variable that holds its
key (`api_key_env`), litellm's conventions apply otherwise.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml


class ConfigError(ValueError):
    """The configuration is invalid; the message starts with the key at fault."""


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what routes and answers call this model
    litellm_model: str  # e.g. "openai/gpt-4o-mini" or "openai/smollm2" with api_base
    stands_for: str  # the model of the fitting suite whose recorded outcomes stand for this one
    family: str = ""
    api_base: str | None = None
    api_key_env: str | None = None
    price_in: float | None = None  # USD per million input tokens (needed when litellm does not know the model)
    price_out: float | None = None
    max_tokens: int = 512
    temperature: float = 0.0


@dataclass(frozen=True)
class RouterSpec:
    kind: str = "hybrid"  # hybrid | taxonomy | learned
    tau_c: float = 0.7
    tau_fam: float = 0.8
    cost_weight: float = 0.05
    k: int = 3


@dataclass(frozen=True)
class CascadeSpec:
    enabled: bool = True
    tau_j: float = 0.7
    # the panel: "verifier" (fitted on the suite's recorded answers), "peer:<pool model>" (agreement with that
    # model's answer), "llm:<pool model>" (an LLM judge; the file may name the pool model alone)
    judges: tuple[str, ...] = ("verifier",)
    rule: str = "mean"

    @property
    def llm_judges(self) -> list[str]:
        return [j[len("llm:"):] for j in self.judges if j.startswith("llm:")]


@dataclass(frozen=True)
class Config:
    models: tuple[ModelSpec, ...]
    fit_suite: str = "routerbench"
    fit_seed: int = 0
    router: RouterSpec = field(default_factory=RouterSpec)
    cascade: CascadeSpec = field(default_factory=CascadeSpec)
    decompose_with: str | None = None  # a pool model that splits requests into subproblems, or none
    budget_usd: float | None = None
    cache_dir: str = "data/cache/llm"
    mode: str = "live"
    operating_point: str | None = None  # "<file>#<budget>": knobs calibrated by make reproduce, instead of router/cascade
    fitted: str | None = None  # a folder written by `emafusion fit`: loaded instead of fitting at start

    def fit_signature(self) -> dict:
        """What a fitted model depends on: a saved one is used only for a config with the same signature."""
        return {"suite": self.fit_suite, "seed": self.fit_seed, "k": self.router.k,
                "pool": [[m.name, m.stands_for, m.family or m.name] for m in self.models]}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)


_TOP = {"models", "fit", "router", "cascade", "decompose_with", "budget_usd", "cache_dir", "mode", "operating_point",
        "fitted"}
_MODEL = {"name", "litellm_model", "stands_for", "family", "api_base", "api_key_env", "price", "max_tokens",
          "temperature"}


def _check_keys(value, allowed: set[str], where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(value).__name__}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(f"{where}.{unknown[0]}: unknown key (allowed: {', '.join(sorted(allowed))})")
    return value


def _number(value, where: str, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{where}: expected a number, got {value!r}")
    if (low is not None and value < low) or (high is not None and value > high):
        raise ConfigError(f"{where}: {value} is outside [{low}, {high}]")
    return float(value)


def _text(value, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"{where}: expected a non-empty string, got {value!r}")
    return value


def parse_config(doc) -> Config:
    doc = _check_keys(doc, _TOP, "config")
    models_doc = doc.get("models")
    if not isinstance(models_doc, list) or not models_doc:
        raise ConfigError("models: expected a non-empty list of models")
    models = []
    for i, m in enumerate(models_doc):
        where = f"models[{i}]"
        m = _check_keys(m, _MODEL, where)
        for key in ("name", "litellm_model", "stands_for"):
            if key not in m:
                raise ConfigError(f"{where}.{key}: required")
        price = _check_keys(m.get("price", {}), {"input", "output"}, f"{where}.price")
        if "api_key_env" in m and m["api_key_env"] is not None and not str(m["api_key_env"]).isidentifier():
            raise ConfigError(f"{where}.api_key_env: name an environment variable, not a key")
        models.append(ModelSpec(
            name=_text(m["name"], f"{where}.name"), litellm_model=_text(m["litellm_model"], f"{where}.litellm_model"),
            stands_for=_text(m["stands_for"], f"{where}.stands_for"), family=str(m.get("family", "")),
            api_base=m.get("api_base"), api_key_env=m.get("api_key_env"),
            price_in=_number(price["input"], f"{where}.price.input", 0) if "input" in price else None,
            price_out=_number(price["output"], f"{where}.price.output", 0) if "output" in price else None,
            max_tokens=int(_number(m.get("max_tokens", 512), f"{where}.max_tokens", 1)),
            temperature=_number(m.get("temperature", 0.0), f"{where}.temperature", 0, 2)))
    names = [m.name for m in models]
    if len(set(names)) != len(names):
        raise ConfigError(f"models: duplicate name {sorted(n for n in names if names.count(n) > 1)[0]!r}")

    fit = _check_keys(doc.get("fit", {}), {"suite", "seed"}, "fit")
    r = _check_keys(doc.get("router", {}), {"kind", "tau_c", "tau_fam", "cost_weight", "k"}, "router")
    kind = r.get("kind", "hybrid")
    if kind not in ("hybrid", "taxonomy", "learned"):
        raise ConfigError(f"router.kind: {kind!r} is not one of hybrid, taxonomy, learned")
    router = RouterSpec(kind, _number(r.get("tau_c", 0.7), "router.tau_c", 0, 1),
                        _number(r.get("tau_fam", 0.8), "router.tau_fam", 0, 1),
                        _number(r.get("cost_weight", 0.05), "router.cost_weight", 0),
                        int(_number(r.get("k", 3), "router.k", 1)))
    c = _check_keys(doc.get("cascade", {}), {"enabled", "tau_j", "judges", "rule"}, "cascade")
    judges_doc = c.get("judges", ["verifier"])
    if not isinstance(judges_doc, list):
        raise ConfigError(f"cascade.judges: expected a list, got {judges_doc!r}")
    judges = []
    for i, j in enumerate(judges_doc):
        model = j.split(":", 1)[1] if isinstance(j, str) and j.startswith(("peer:", "llm:")) else j
        if j == "verifier":
            judges.append(j)
        elif model not in names:
            raise ConfigError(f"cascade.judges[{i}]: {j!r} is not verifier, peer:<model>, llm:<model> or a model of "
                              f"the pool ({', '.join(names)})")
        else:
            judges.append(j if j != model else f"llm:{model}")
    judges = tuple(judges)
    rule = c.get("rule", "mean")
    if rule not in ("mean", "majority", "unanimity"):
        raise ConfigError(f"cascade.rule: {rule!r} is not one of mean, majority, unanimity")
    cascade = CascadeSpec(bool(c.get("enabled", True)), _number(c.get("tau_j", 0.7), "cascade.tau_j", 0, 1),
                          judges, rule)
    decompose = doc.get("decompose_with")
    if decompose is not None and decompose not in names:
        raise ConfigError(f"decompose_with: {decompose!r} is not a model of the pool ({', '.join(names)})")
    mode = doc.get("mode", "live")
    if mode not in ("live", "replay", "refresh"):
        raise ConfigError(f"mode: {mode!r} is not one of live, replay, refresh")
    budget = doc.get("budget_usd")
    point = doc.get("operating_point")
    if point is not None and (not isinstance(point, str) or "#" not in point):
        raise ConfigError(f"operating_point: expected '<file>#<budget in USD>', got {point!r}")
    return Config(tuple(models), _text(fit.get("suite", "routerbench"), "fit.suite"),
                  int(_number(fit.get("seed", 0), "fit.seed", 0)), router, cascade, decompose,
                  None if budget is None else _number(budget, "budget_usd", 0), str(doc.get("cache_dir", "data/cache/llm")),
                  mode, point, None if doc.get("fitted") is None else _text(doc["fitted"], "fitted"))


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    try:
        return parse_config(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
