"""CLI start-up: how long `emafusion route` takes before its first answer, split into imports, getting the
fitted method (fitting it from the config, or loading what `emafusion fit` saved) and the first route.

Run: .venv/bin/python benchmarks/bench_cli.py  (each phase in a fresh interpreter, so imports are cold).
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "local.yaml"

PHASES = r'''
import json, sys, time
t0 = time.perf_counter()
from emafusion_core.config import load_config
from emafusion_core.features import default_encoder
from emafusion_core.system import EMAFusionSystem
t_import = time.perf_counter() - t0
import yaml, pathlib
config_path = sys.argv[1]
t0 = time.perf_counter()
system = EMAFusionSystem.build(load_config(config_path))
t_build = time.perf_counter() - t0
t0 = time.perf_counter()
system.route("Write a Python function that reverses a list.")
t_route = time.perf_counter() - t0
t0 = time.perf_counter()
system.route("What is the capital of France?")
t_next = time.perf_counter() - t0
print(json.dumps({"import": t_import, "build": t_build, "first_route": t_route, "next_route": t_next}))
'''


def run(config: Path) -> dict:
    out = subprocess.run([sys.executable, "-c", PHASES, str(config)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    import yaml

    with tempfile.TemporaryDirectory() as tmp:
        doc = yaml.safe_load(EXAMPLE.read_text())
        doc["cache_dir"] = str(Path(tmp) / "cache")
        fit_cfg = Path(tmp) / "fit.yaml"
        fit_cfg.write_text(yaml.safe_dump(doc))
        subprocess.run([sys.executable, "-m", "emafusion_core.cli", "fit", "--config", str(fit_cfg), "--out",
                        str(Path(tmp) / "model")], check=True, capture_output=True)
        doc["fitted"] = str(Path(tmp) / "model")
        load_cfg = Path(tmp) / "load.yaml"
        load_cfg.write_text(yaml.safe_dump(doc))
        for label, cfg in (("fit at start", fit_cfg), ("load `emafusion fit` output", load_cfg)):
            t = run(cfg)
            total = t["import"] + t["build"] + t["first_route"]
            print(f"{label:<30} import {t['import']:5.2f} s  build {t['build']:5.2f} s  first route "
                  f"{t['first_route']:5.2f} s  (total {total:5.2f} s; next route {t['next_route'] * 1e3:.0f} ms)")


if __name__ == "__main__":
    main()
