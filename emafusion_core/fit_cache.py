"""A disk cache of fitted EMAFusion methods: the notebooks of one `make reproduce` fit each (suite, seed, split)
once instead of once per notebook (02, 03, 04 and 05 all fit the same fit splits).

The key is a digest of everything a fit reads: the package's own source (a code change is a new key, so a
cached fit can never be stale), the method's hyperparameters, and the training set (query ids, texts and
metadata, embeddings, scores, costs, failures, model names, families, seed) with the recorded answers its judges
are fitted on. Entries are written with persist.py (plain arrays, no pickles) into a temporary folder renamed
into place, so concurrent writers cannot leave half an entry. A cold miss also returns the saved-and-loaded copy:
a notebook gets the same object whether the entry was there or not.

Off unless EMAFUSION_FIT_CACHE names a folder (make reproduce sets build/cache/fitted); tests and library calls
fit in memory as before.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from functools import lru_cache
from pathlib import Path

import numpy as np

from .persist import FittedModelError, load_method, save_method

ENV = "EMAFUSION_FIT_CACHE"
PACKAGE = Path(__file__).resolve().parent


@lru_cache(maxsize=1)
def code_digest() -> str:
    """sha256 over the package's source and data files (a change anywhere in the package is a new key)."""
    h = hashlib.sha256()
    for path in sorted(p for p in PACKAGE.rglob("*") if p.suffix in (".py", ".yaml", ".json") and p.is_file()):
        h.update(str(path.relative_to(PACKAGE)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()


def _update_array(h, a) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    if a.dtype == object:
        for v in a.ravel():
            h.update(b"\x00" if v is None else (b"\x01" + str(v).encode("utf-8", "surrogatepass")))
    else:
        h.update(a.tobytes())


def training_digest(training) -> str | None:
    """Digest of what fitting reads from a TrainingSet; None when its answers are not replayed (a live
    executor's answers are not known in advance, so such a fit is never cached)."""
    answers = getattr(training.executor, "recorded_arrays", None)
    if answers is None:
        return None
    h = hashlib.sha256()
    view = training.view
    queries = [[q.query_id, q.prompt, q.question, q.benchmark, q.category, q.answer_format,
                sorted((k, str(v)) for k, v in q.metadata.items())] for q in view.queries]
    h.update(json.dumps([queries, list(training.model_names), sorted(training.families.items()),
                         training.seed, training.suite, training.split], default=str).encode())
    for a in (view.embeddings if view.embeddings is not None else np.zeros(0), training.scores, training.costs,
              training.failed):
        _update_array(h, np.asarray(a))
    for a in answers(view.query_ids, training.model_names):
        _update_array(h, a)
    return h.hexdigest()


def hyper_of(method) -> dict:
    """The constructor's hyperparameters (scikit-learn's get_params idea), without the encoder object."""
    return {k: v for k, v in sorted(vars(method).items()) if not k.endswith("_") and not k.startswith("_")
            and k != "encoder"}


class FitCache:
    """folder: where entries live, one sub-folder per key, named `<code digest>-<fit digest>`; entries of other
    code versions can never be read again and are removed when the cache is opened (prune=True)."""

    def __init__(self, folder: Path, prune: bool = True):
        self.folder = Path(folder)
        self.prefix = code_digest()[:12]
        if prune and self.folder.is_dir():
            for old in self.folder.iterdir():
                if old.is_dir() and not old.name.startswith((self.prefix, ".")):
                    shutil.rmtree(old, ignore_errors=True)

    def key(self, method, training) -> str | None:
        data = training_digest(training)
        if data is None:
            return None
        parts = json.dumps([code_digest(), hyper_of(method), type(method.encoder).__name__, data], default=str)
        return f"{self.prefix}-{hashlib.sha256(parts.encode()).hexdigest()[:24]}"

    def load(self, method, training):
        """`method` fitted on `training` if the cache holds it, else None (nothing is fitted)."""
        key = self.key(method, training)
        if key is None or not (self.folder / key).is_dir():
            return None
        try:
            return load_method(self.folder / key, method.encoder)
        except FittedModelError:
            return None

    def fitted(self, method, training):
        """`method` fitted on `training`: loaded from the cache, else fitted, saved, and loaded back."""
        key = self.key(method, training)
        if key is None:
            return method.fit(training)
        entry = self.folder / key
        hit = self.load(method, training)
        if hit is not None:
            return hit
        method.fit(training)
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=self.folder))
        try:
            save_method(method, tmp, fit={"suite": training.suite, "split": training.split, "seed": training.seed})
            try:
                os.replace(tmp, entry)
            except OSError:  # another process wrote the same entry first: keep theirs
                pass
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return load_method(entry, method.encoder)


_OPENED: dict[str, FitCache] = {}


def from_environment() -> FitCache | None:
    """The cache EMAFUSION_FIT_CACHE names (opened, and pruned, once per process), or None (fit in memory)."""
    folder = os.environ.get(ENV, "").strip()
    if not folder:
        return None
    if folder not in _OPENED:
        _OPENED[folder] = FitCache(Path(folder))
    return _OPENED[folder]
