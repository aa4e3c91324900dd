"""Save and load a fitted EMAFusion without pickling arbitrary objects: a folder with `manifest.json` (names,
hyperparameters, what it was fitted on) and `arrays.npz` (every fitted number: logistic-regression coefficients,
the suitability table, the torch network's state_dict), read back with allow_pickle=False.

`emafusion fit` writes one; `route`, `ask` and `serve` load it and run no fit code. The manifest's `fit` entry
(suite, seed, pool) lets a config that does not match the saved model be refused.
"""
from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

import numpy as np

FORMAT = "emafusion-fitted-v1"


class FittedModelError(ValueError):
    """A saved model folder is missing, malformed, or does not match the configuration."""


def _lr_arrays(clf, prefix: str, out: dict) -> None:
    out[f"{prefix}.coef"], out[f"{prefix}.intercept"] = clf.coef_, clf.intercept_
    out[f"{prefix}.classes"] = clf.classes_


def _lr(arrays, prefix: str, **params):
    from sklearn.linear_model import LogisticRegression

    clf = LogisticRegression(**params)
    clf.coef_, clf.intercept_ = arrays[f"{prefix}.coef"], arrays[f"{prefix}.intercept"]
    clf.classes_ = arrays[f"{prefix}.classes"]
    clf.n_features_in_ = clf.coef_.shape[1]
    return clf


def save_method(method, folder: str | Path, fit: dict | None = None) -> Path:
    """Write a fitted EMAFusion to `folder` (created); `fit` describes what it was fitted on."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {}
    tax = method.taxonomy_router_  # None when the fit had no taxonomy labels (taxonomy_unavailable_ says why)
    fast_constant = {}
    for axis, model in (tax.fast._models.items() if tax is not None else ()):
        if isinstance(model, int):
            fast_constant[axis] = model
        else:
            _lr_arrays(model, f"fast.{axis}", arrays)
    suit = tax.suitability if tax is not None else None
    for axis in (suit._sum if suit is not None else ()):
        arrays[f"suit.{axis}.sum"], arrays[f"suit.{axis}.mass"] = suit._sum[axis], suit._mass[axis]
    if suit is not None:
        arrays["suit.overall"] = suit._overall
        for axis in suit._pseudo:  # what the self-optimising loop folded in (online.py), to keep capping it
            arrays[f"suit.{axis}.pseudo"], arrays[f"suit.{axis}.fitted_mass"] = (suit._pseudo[axis],
                                                                                 suit._fitted_mass[axis])
    arrays["unit_cost"] = np.asarray(method.unit_cost_, float)
    for name, tensor in method.learned_.net.state_dict().items():
        arrays[f"net.{name}"] = tensor.detach().cpu().numpy()
    for name, tensor in zip(("weight", "bias"), getattr(method.learned_, "prior_heads_", ())):
        arrays[f"prior_heads.{name}"] = tensor.detach().cpu().numpy()  # what online updates are pulled toward
    ver = method.verifier_
    for j, clf in ver._clfs.items():
        _lr_arrays(clf, f"verifier.{j}", arrays)
    sv = getattr(method, "state_verifier_", None)
    sv_meta = None if sv is None else sv.to_arrays("state_verifier", arrays)
    cfg = method.learned_.config
    manifest = {
        "format": FORMAT, "fit": fit or {},
        "hyper": {"k": method.k, "prior_strength": method.prior_strength, "n_peers": method.n_peers,
                  "validation_share": method.validation_share, "n_tau_c": method.n_tau_c,
                  "state_verifier": sv is not None, "n_folds": method.n_folds},
        "state_verifier": sv_meta,
        "model_names": method.model_names_, "families": method.families_, "peers": method.peers_,
        "taxonomy": {a: list(c) for a, c in method.taxonomy_.categories.items()},
        "taxonomy_unavailable": getattr(method, "taxonomy_unavailable_", None),
        "require_taxonomy": getattr(method, "require_taxonomy", True),
        "fast": None if tax is None else {"C": tax.fast.C, "seed": tax.fast.seed, "constant": fast_constant},
        "suitability": None if suit is None else {"prior_strength": suit.prior_strength},
        "learned": {"dim": method.learned_.dim, "extra_dim": method.learned_._extra_dim, "seed": cfg.seed,
                    "hidden": list(cfg.hidden), "dropout": cfg.dropout, "loss": cfg.loss},
        "verifier": {"query_features": ver._q.n_features, "answer_features": ver._a.n_features, "C": ver.C,
                     "constant": {str(j): v for j, v in ver._constant.items()}, "fitted": sorted(ver._clfs)},
    }
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    return folder


# ---- the part the self-optimising loop changes (online.py), on its own: what `serve` keeps in its store ----------
def learned_arrays(method) -> dict[str, np.ndarray]:
    """The arrays the self-optimising loop changes, under the names save_method writes them: per taxonomy axis the
    suitability sums, masses, pseudo-observations folded in and the fitted mass they are capped against; the
    learned router's heads and the fitted heads its updates are pulled toward (the current heads before any
    update, as update_heads would take them). Copies, in a fixed order."""
    import torch

    suit = method.taxonomy_router_.suitability
    out: dict[str, np.ndarray] = {}
    for axis in suit._sum:
        out[f"suit.{axis}.sum"], out[f"suit.{axis}.mass"] = suit._sum[axis].copy(), suit._mass[axis].copy()
        out[f"suit.{axis}.pseudo"] = suit.pseudo(axis).copy()
        out[f"suit.{axis}.fitted_mass"] = suit._fitted_mass.get(axis, suit._mass[axis]).copy()
    heads = method.learned_.net.heads
    prior = getattr(method.learned_, "prior_heads_", None) or [heads.weight, heads.bias]
    for name, tensor, fitted in zip(("weight", "bias"), (heads.weight, heads.bias), prior):
        out[f"net.heads.{name}"] = tensor.detach().cpu().numpy().copy()
        out[f"prior_heads.{name}"] = torch.as_tensor(fitted).detach().cpu().numpy().copy()
    return out


def set_learned_arrays(method, arrays: dict[str, np.ndarray]) -> None:
    """Put arrays of `learned_arrays` into a method (all or nothing: every name, shape and dtype is checked
    first; FittedModelError names the first that does not match)."""
    import torch

    expected = learned_arrays(method)
    if set(arrays) != set(expected):
        missing, extra = sorted(set(expected) - set(arrays)), sorted(set(arrays) - set(expected))
        said = [f"{len(missing)} missing ({', '.join(missing[:3])}{', ...' if len(missing) > 3 else ''})"] if missing else []
        said += [f"{len(extra)} unknown ({', '.join(extra[:3])}{', ...' if len(extra) > 3 else ''})"] if extra else []
        raise FittedModelError(f"learned state: arrays {' and '.join(said)} for this model")
    for name, ref in expected.items():
        a = arrays[name]
        if a.shape != ref.shape or a.dtype != ref.dtype:
            raise FittedModelError(f"learned state: {name} is {a.dtype}{list(a.shape)}, this model's is "
                                   f"{ref.dtype}{list(ref.shape)}")
        if not np.isfinite(a).all():
            raise FittedModelError(f"learned state: {name} holds non-finite numbers")
    suit = method.taxonomy_router_.suitability
    for axis in list(suit._sum):
        suit._sum[axis], suit._mass[axis] = arrays[f"suit.{axis}.sum"].copy(), arrays[f"suit.{axis}.mass"].copy()
        suit._pseudo[axis] = arrays[f"suit.{axis}.pseudo"].copy()
        suit._fitted_mass[axis] = arrays[f"suit.{axis}.fitted_mass"].copy()
    heads = method.learned_.net.heads
    with torch.no_grad():
        heads.weight.copy_(torch.from_numpy(arrays["net.heads.weight"]))
        heads.bias.copy_(torch.from_numpy(arrays["net.heads.bias"]))
    method.learned_.prior_heads_ = [torch.from_numpy(arrays[f"prior_heads.{n}"].copy()) for n in ("weight", "bias")]


def encode_arrays(arrays: dict[str, np.ndarray]) -> dict:
    """Arrays as JSON: {name: {dtype, shape, data (base64 of the little-endian bytes)}}, lossless, no pickle."""
    out = {}
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        if a.dtype.kind not in "fiub":
            raise ValueError(f"{name}: only numeric arrays are stored, not {a.dtype}")
        le = a.astype(a.dtype.newbyteorder("<"), copy=False)
        out[name] = {"dtype": le.dtype.str, "shape": list(a.shape), "data": base64.b64encode(le.tobytes()).decode()}
    return out


def decode_arrays(doc: dict) -> dict[str, np.ndarray]:
    """encode_arrays' inverse; ValueError on anything malformed (never unpickles: raw numeric bytes only)."""
    if not isinstance(doc, dict):
        raise ValueError("arrays: expected a mapping")
    out = {}
    for name, entry in doc.items():
        try:
            dtype = np.dtype(entry["dtype"])
            shape = tuple(int(n) for n in entry["shape"])
            if dtype.kind not in "fiub" or any(n < 0 for n in shape):
                raise ValueError("bad dtype or shape")
            data = base64.b64decode(entry["data"], validate=True)
            out[name] = np.frombuffer(data, dtype=dtype).reshape(shape).astype(dtype.newbyteorder("="))
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"arrays.{name}: malformed ({type(exc).__name__}: {exc})") from None
    return out


def digest_arrays(arrays: dict[str, np.ndarray]) -> str:
    """A short fingerprint of arrays (names, dtypes, shapes and bytes)."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()[:16]


def read_manifest(folder: str | Path) -> dict:
    path = Path(folder) / "manifest.json"
    try:
        manifest = json.loads(path.read_text())
    except OSError:
        raise FittedModelError(f"{folder}: no fitted model here (run `emafusion fit --config ... --out {folder}`)") \
            from None
    except json.JSONDecodeError as exc:
        raise FittedModelError(f"{path}: not valid JSON ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise FittedModelError(f"{path}: format {manifest.get('format')!r}, expected {FORMAT!r}")
    return manifest


def _taxonomy_router(method, m: dict, arrays: dict, encoder):
    """The fast classifier and suitability table of a saved model, as its TaxonomyRouter."""
    from .taxonomy import FastClassifier, SuitabilityTable, TaxonomyRouter

    fast = FastClassifier(method.taxonomy_, encoder=encoder, C=m["fast"]["C"], seed=m["fast"]["seed"])
    for axis in method.taxonomy_.categories:
        if axis in m["fast"]["constant"]:
            fast._models[axis] = int(m["fast"]["constant"][axis])
        else:
            fast._models[axis] = _lr(arrays, f"fast.{axis}", C=fast.C, max_iter=2000, random_state=fast.seed)
    suit = SuitabilityTable(method.taxonomy_, method.model_names_, m["suitability"]["prior_strength"])
    for axis in method.taxonomy_.categories:
        suit._sum[axis], suit._mass[axis] = arrays[f"suit.{axis}.sum"], arrays[f"suit.{axis}.mass"]
    suit._overall = arrays["suit.overall"]
    for axis in method.taxonomy_.categories:
        if f"suit.{axis}.pseudo" in arrays:
            suit._pseudo[axis], suit._fitted_mass[axis] = arrays[f"suit.{axis}.pseudo"], arrays[f"suit.{axis}.fitted_mass"]
    return TaxonomyRouter(method.taxonomy_, fast, suit, method.unit_cost_, max_candidates=method.k)


def load_method(folder: str | Path, encoder=None):
    """A fitted EMAFusion from `folder`; `encoder` embeds live query texts (the one it was fitted with)."""
    import torch

    from .judges import LearnedVerifier
    from .learned import LearnedRouter
    from .learned.model import ScoreNet
    from .learned.train import TrainConfig
    from .method import EMAFusion
    from .taxonomy import default_taxonomy

    folder = Path(folder)
    m = read_manifest(folder)
    with np.load(folder / "arrays.npz", allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    method = EMAFusion(encoder=encoder, **m["hyper"])
    method.model_names_, method.families_, method.peers_ = m["model_names"], m["families"], m["peers"]
    method.taxonomy_ = default_taxonomy()
    if {a: list(c) for a, c in method.taxonomy_.categories.items()} != m["taxonomy"]:
        raise FittedModelError(f"{folder}: fitted with another taxonomy than this package's taxonomy.yaml")
    method.unit_cost_ = arrays["unit_cost"]
    method.require_taxonomy = m.get("require_taxonomy", True)
    method.taxonomy_unavailable_ = m.get("taxonomy_unavailable")
    method.taxonomy_router_ = None if m["fast"] is None else _taxonomy_router(method, m, arrays, encoder)
    ln = m["learned"]
    config = TrainConfig(hidden=tuple(ln["hidden"]), dropout=ln["dropout"], loss=ln["loss"], seed=ln["seed"])
    learned = LearnedRouter(encoder, method.model_names_, method.unit_cost_, k=method.k, config=config)
    learned.dim, learned._extra_dim = ln["dim"], ln["extra_dim"]
    net = ScoreNet(ln["dim"] + ln["extra_dim"], len(method.model_names_), config.hidden, config.dropout)
    net.load_state_dict({k[len("net."):]: torch.from_numpy(v) for k, v in arrays.items() if k.startswith("net.")})
    learned.net = net.eval()
    if "prior_heads.weight" in arrays:
        learned.prior_heads_ = [torch.from_numpy(arrays[f"prior_heads.{n}"]) for n in ("weight", "bias")]
    method.learned_ = learned
    vm = m["verifier"]
    ver = LearnedVerifier(query_bits=int(np.log2(vm["query_features"])), answer_bits=int(np.log2(vm["answer_features"])),
                          C=vm["C"])
    ver.model_names = list(method.model_names_)
    ver._constant = {int(j): v for j, v in vm["constant"].items()}
    ver._clfs = {int(j): _lr(arrays, f"verifier.{j}", C=ver.C, solver="liblinear") for j in vm["fitted"]}
    method.verifier_ = ver
    from .judges.state_verifier import StateVerifier

    sv_meta = m.get("state_verifier")
    method.state_verifier_ = None if sv_meta is None else StateVerifier.from_arrays("state_verifier", arrays, sv_meta)
    method._panels = {}
    return method
