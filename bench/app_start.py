"""App start with every installed (first-party) plugin: bootstrap + build the FastAPI app.

Run: .venv/bin/python bench/app_start.py [--runs 5]     Goal (issue 2): at most 1 s.
Each run is a fresh interpreter, so imports are counted as a clinic's restart would count them.
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
t0 = time.perf_counter()
from core.api.app import create_app
from core.app_context import bootstrap
praxis = bootstrap()
app = create_app(praxis, start_worker=False)
print(f"{time.perf_counter() - t0:.3f} {len(praxis.runtime.available())}")
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    data = Path(tempfile.mkdtemp())
    env = {**os.environ, "PRAXIS_DATA_DIR": str(data), "PRAXIS_PLUGINS_FILE": str(ROOT / "plugins.toml"),
           "PRAXIS_MASTER_KEY": f"1:{base64.b64encode(os.urandom(32)).decode()}"}
    env.pop("DATABASE_URL", None)
    subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, check=True, capture_output=True)  # migrate once
    times, plugins = [], 0
    for _ in range(args.runs):
        out = subprocess.run([sys.executable, "-c", PROBE], env=env, cwd=ROOT, check=True,
                             capture_output=True, text=True).stdout.split()
        times.append(float(out[0]))
        plugins = int(out[1])
    print(f"app start with {plugins} plugins: median {statistics.median(times):.3f} s, "
          f"max {max(times):.3f} s over {args.runs} runs (imports included)")


if __name__ == "__main__":
    main()
