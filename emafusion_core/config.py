"""The one YAML file that configures a live EMAFusion: model pool, routers, cascade, judges, budget.

Plain data in, validated objects out. The file is checked against a typed schema (pydantic, strict: numbers
finite, integers integers, booleans booleans, strings strings, no unknown keys) and then across fields (judges
and decompose_with name pool models, names unique); every error names the key path as the file writes it
(e.g. `models[0].price.output`), and all of them come in one line, so a typo is fixed in one look. Later
sections extend the schema below rather than bypass it. API keys are never in the file: a model names the
environment variable that holds its key (`api_key_env`), litellm's conventions apply otherwise.

The rest of the code reads the frozen dataclasses (Config, ModelSpec, RouterSpec, CascadeSpec), not the schema.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class ConfigError(ValueError):
    """The configuration is invalid; the message starts with the key at fault."""


@dataclass(frozen=True)
class ModelSpec:
    name: str  # what routes and answers call this model
    litellm_model: str  # e.g. "openai/gpt-4o-mini" or "openai/smollm2" with api_base
    # the model of the fitting suite whose recorded outcomes stand for this one; None: the suite's model of this
    # name (a suite collected for this pool with `emafusion collect`)
    stands_for: str | None = None
    family: str = ""
    api_base: str | None = None
    api_key_env: str | None = None
    price_in: float | None = None  # USD per million input tokens (needed when litellm does not know the model)
    price_out: float | None = None
    max_tokens: int = 512
    temperature: float = 0.0
    system_prompt: str | None = None  # sent before every request: part of what this pool model is

    @property
    def suite_model(self) -> str:
        """The fitting suite's model whose outcomes this pool model uses."""
        return self.stands_for or self.name


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
class LedgerSpec:
    """Where the config's budget keeps its spent total (llm/ledger.py)."""

    backend: str = "disk"  # disk (beside cache_dir: shared by the processes of one machine) | redis | memory
    path: str | None = None  # disk: a directory (default: `<cache_dir>-budget`)
    url: str | None = None  # redis: redis://host:port/db (required for redis)
    name: str = "default"  # the ledger's name: configs with the same name (and store) share one cap
    lease_s: float = 900.0  # a reservation unsettled this long is charged in full (its holder died)

    def disk_path(self, cache_dir: str) -> str:
        return self.path or str(Path(cache_dir).with_name(Path(cache_dir).name + "-budget"))


@dataclass(frozen=True)
class SelfOptimisingSpec:
    """`emafusion serve`'s self-optimising loop (online.py, online_store.py): off unless enabled. The defaults are
    the replay experiment's (notebooks/07_self_optimising.ipynb)."""

    enabled: bool = False
    batch_size: int = 100  # served requests per update of the learned state
    weight: float = 1.0  # pseudo-observations per fully confident verdict
    cap: float = 1.0  # pseudo-observations per (category, model) at most cap x (fitted mass + prior)
    explore_share: float = 0.05  # share of requests that buy (and judge) one more model, charged
    seed: int = 0  # seeds which requests explore


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
    budget_period: str = "none"  # none | day | month (UTC): a new period starts from zero spent
    ledger: LedgerSpec = field(default_factory=LedgerSpec)
    operating_point: str | None = None  # "<file>#<budget>": knobs calibrated by make reproduce, instead of router/cascade
    fitted: str | None = None  # a folder written by `emafusion fit`: loaded instead of fitting at start
    timeout_s: float = 120.0  # per provider attempt (each call may retry within the deadline)
    deadline_s: float | None = None  # per request: calls stop at it and the fallback decides (None: none)
    self_optimising: SelfOptimisingSpec = field(default_factory=SelfOptimisingSpec)

    def fit_signature(self) -> dict:
        """What a fitted model depends on: a saved one is used only for a config with the same signature."""
        return {"suite": self.fit_suite, "seed": self.fit_seed, "k": self.router.k,
                "pool": [[m.name, m.suite_model, m.family or m.name] for m in self.models]}

    def model(self, name: str) -> ModelSpec:
        return next(m for m in self.models if m.name == name)



# ---- the schema (what the file may say) ------------------------------------------------------------------

_STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
_Text = Annotated[str, Field(min_length=1, pattern=r"\S")]
_Unit = Annotated[float, Field(ge=0, le=1)]
_NonNegative = Annotated[float, Field(ge=0)]
_Positive = Annotated[float, Field(gt=0)]


class _Price(BaseModel):
    model_config = _STRICT
    input: _NonNegative  # USD per million tokens, both required
    output: _NonNegative


class _Model(BaseModel):
    model_config = _STRICT
    name: _Text
    litellm_model: _Text
    stands_for: _Text | None = None
    family: str = ""
    api_base: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None
    api_key_env: Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")] | None = None
    price: _Price | None = None
    max_tokens: Annotated[int, Field(ge=1)] = 512
    temperature: Annotated[float, Field(ge=0, le=2)] = 0.0
    system_prompt: _Text | None = None


class _Fit(BaseModel):
    model_config = _STRICT
    suite: _Text = "routerbench"
    seed: Annotated[int, Field(ge=0)] = 0


class _Router(BaseModel):
    model_config = _STRICT
    kind: Literal["hybrid", "taxonomy", "learned"] = "hybrid"
    tau_c: _Unit = 0.7
    tau_fam: _Unit = 0.8
    cost_weight: _NonNegative = 0.05
    k: Annotated[int, Field(ge=1)] = 3


class _Cascade(BaseModel):
    model_config = _STRICT
    enabled: bool = True
    tau_j: _Unit = 0.7
    judges: list[_Text] = ["verifier"]
    rule: Literal["mean", "majority", "unanimity"] = "mean"


class _Ledger(BaseModel):
    model_config = _STRICT
    backend: Literal["disk", "redis", "memory"] = "disk"
    path: _Text | None = None
    url: Annotated[str, Field(pattern=r"^rediss?://\S+$")] | None = None
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "default"
    lease_s: _Positive = 900.0


class _SelfOptimising(BaseModel):
    model_config = _STRICT
    enabled: bool = False
    batch_size: Annotated[int, Field(ge=1)] = 100
    weight: _NonNegative = 1.0
    cap: _NonNegative = 1.0
    explore_share: _Unit = 0.05
    seed: Annotated[int, Field(ge=0)] = 0


class _File(BaseModel):
    model_config = _STRICT
    models: Annotated[list[_Model], Field(min_length=1)]
    fit: _Fit = _Fit()
    router: _Router = _Router()
    cascade: _Cascade = _Cascade()
    decompose_with: _Text | None = None
    budget_usd: _NonNegative | None = None
    cache_dir: _Text = "data/cache/llm"
    mode: Literal["live", "replay", "refresh"] = "live"
    budget_period: Literal["none", "day", "month"] = "none"
    ledger: _Ledger = _Ledger()
    operating_point: Annotated[str, Field(pattern=r"^.+#.+$")] | None = None
    fitted: _Text | None = None
    timeout_s: _Positive = 120.0
    deadline_s: _Positive | None = None
    self_optimising: _SelfOptimising = _SelfOptimising()


def _path(loc: tuple) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


_SECRET_LOOKING = ("api_key_env",)  # a key pasted where its variable's name belongs: never echoed


def _message(error: dict) -> str:
    loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith("function-")))
    kind, where = error["type"], _path(loc)
    if kind == "extra_forbidden":
        allowed = _allowed(loc[:-1])
        return f"{where if len(loc) > 1 else 'config.' + where}: unknown key" + (f" (allowed: {allowed})" if allowed else "")
    if kind == "missing":
        return f"{where}: required"
    msg = error["msg"]
    if any(str(p) in _SECRET_LOOKING for p in loc):
        return f"{where}: name an environment variable (letters, digits, _), not a key"
    value = error.get("input")
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    if kind == "string_pattern_mismatch" and loc and loc[-1] == "operating_point":
        msg = "expected '<file>#<budget in USD>'"
    return f"{where}: {msg[0].lower() + msg[1:]}, got {shown}"


def _allowed(loc: tuple) -> str:
    model: Any = _File
    for part in loc:
        if isinstance(part, int):
            continue
        annotation = model.model_fields[part].annotation if part in getattr(model, "model_fields", {}) else None
        args = getattr(annotation, "__args__", ()) or (annotation,)
        model = next((a for a in _flatten(args) if isinstance(a, type) and issubclass(a, BaseModel)), None)
        if model is None:
            return ""
    return ", ".join(sorted(model.model_fields)) if model is not None else ""


def _flatten(args):
    for a in args:
        inner = getattr(a, "__args__", None)
        if inner:
            yield from _flatten(inner)
        else:
            yield a


def parse_config(doc) -> Config:
    """Validate a decoded YAML document; ConfigError (one line, starting with the key path) if it is wrong."""
    if not isinstance(doc, dict):
        raise ConfigError(f"config: expected a mapping of sections, got {type(doc).__name__}")
    try:
        f = _File.model_validate(doc)
    except ValidationError as exc:
        raise ConfigError("; ".join(_message(e) for e in exc.errors(include_url=False))) from None
    names = [m.name for m in f.models]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"models: duplicate name {name!r} (models[{names.index(name)}] and models[{i}])")
    stands = [m.stands_for or m.name for m in f.models]
    for i, s in enumerate(stands):
        if s in stands[:i]:
            raise ConfigError(f"models[{i}].stands_for: {s!r} already stands for {names[stands.index(s)]!r}")
    judges = []
    for i, j in enumerate(f.cascade.judges):
        model = j.split(":", 1)[1] if j.startswith(("peer:", "llm:")) else j
        if j == "verifier":
            judges.append(j)
        elif model not in names:
            raise ConfigError(f"cascade.judges[{i}]: {j!r} is not verifier, peer:<model>, llm:<model> or a model of "
                              f"the pool ({', '.join(names)})")
        else:
            judges.append(j if j != model else f"llm:{model}")
    if f.decompose_with is not None and f.decompose_with not in names:
        raise ConfigError(f"decompose_with: {f.decompose_with!r} is not a model of the pool ({', '.join(names)})")
    if f.ledger.backend == "redis" and f.ledger.url is None:
        raise ConfigError("ledger.url: required for the redis backend (redis://host:port/db)")
    models = tuple(ModelSpec(
        name=m.name, litellm_model=m.litellm_model, stands_for=m.stands_for, family=m.family, api_base=m.api_base,
        api_key_env=m.api_key_env, price_in=None if m.price is None else float(m.price.input),
        price_out=None if m.price is None else float(m.price.output), max_tokens=m.max_tokens,
        temperature=float(m.temperature), system_prompt=m.system_prompt) for m in f.models)
    r, c, so = f.router, f.cascade, f.self_optimising
    return Config(models, f.fit.suite, f.fit.seed,
                  RouterSpec(r.kind, float(r.tau_c), float(r.tau_fam), float(r.cost_weight), r.k),
                  CascadeSpec(c.enabled, float(c.tau_j), tuple(judges), c.rule), f.decompose_with,
                  None if f.budget_usd is None else float(f.budget_usd), f.cache_dir, f.mode, f.budget_period,
                  LedgerSpec(f.ledger.backend, f.ledger.path, f.ledger.url, f.ledger.name, float(f.ledger.lease_s)),
                  f.operating_point, f.fitted, float(f.timeout_s),
                  None if f.deadline_s is None else float(f.deadline_s),
                  SelfOptimisingSpec(so.enabled, so.batch_size, float(so.weight), float(so.cap),
                                     float(so.explore_share), so.seed))


def load_config(path: str | Path) -> Config:
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot be read ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({' '.join(str(exc).split())})") from None
    try:
        return parse_config(doc)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from None
