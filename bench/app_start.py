"""App start with every installed (first-party) plugin: bootstrap + build the FastAPI app.

Run: .venv/bin/python bench/app_start.py [--runs 5] [--cold]     Goal (issue 2): at most 1 s.
Each run is a fresh interpreter, so imports are counted as a clinic's restart would count them: with the
bytecode cache Python keeps (__pycache__), which a first start or ``pip install`` fills. The cache goes to a
temporary folder (PYTHONPYCACHEPREFIX) filled by the warm-up run, also when the calling environment sets
PYTHONDONTWRITEBYTECODE; ``--cold`` measures without any cache (every module compiled at every start).
Besides the wall-clock median the runs' CPU time is printed (compare that one on a shared machine).
"""

from __future__ import annotations

import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PROBE = """
import time
t0, c0 = time.perf_counter(), time.process_time()
from core.api.app import create_app
from core.app_context import bootstrap
praxis = bootstrap()
app = create_app(praxis, start_worker=False)
print(f"{time.perf_counter() - t0:.3f} {time.process_time() - c0:.3f} {len(praxis.runtime.available())}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--cold", action="store_true", help="no bytecode cache: compile every module every run")
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    env = {**os.environ, "PRAXIS_DATA_DIR": str(data), "PRAXIS_PLUGINS_FILE": str(ROOT / "plugins.toml"),
           "PRAXIS_MASTER_KEY": f"1:{base64.b64encode(os.urandom(32)).decode()}"}
    env.pop("DATABASE_URL", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(data / "pycache")
    if args.cold:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, check=True, capture_output=True)  # migrate once
    times, cpu, plugins = [], [], 0
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
        times.append(float(out[0]))
        cpu.append(float(out[1]))
        plugins = int(out[2])
    cache = "no bytecode cache" if args.cold else "bytecode cached"
    print(f"app start with {plugins} plugins: median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {args.runs} runs (imports included, {cache}); "
          f"CPU median {statistics.median(cpu):.3f} s, min {min(cpu):.3f} s")


if __name__ == "__main__":
    main()
