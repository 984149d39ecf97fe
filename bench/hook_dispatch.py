"""Hook dispatch overhead with 30 registered plugins, against calling the 30 functions directly.

Run: .venv/bin/python bench/hook_dispatch.py [--calls 20000]
Goal (issue 2): at most 20 µs of overhead per dispatched call.
"""

from __future__ import annotations

import argparse
import base64
import os
import sys
import tempfile
import time
import types
from importlib.metadata import EntryPoint
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.app_context import bootstrap  # noqa: E402
from core.audit import Actor  # noqa: E402
from core.config import Settings  # noqa: E402
from core.db import transaction  # noqa: E402
from core.models.clinic import Clinic  # noqa: E402
from plugin_sdk import Category, PluginManifest, hookimpl  # noqa: E402

N_PLUGINS = 30


def make_plugin(i: int) -> types.ModuleType:
    module = types.ModuleType(f"bench_plugin_{i}")
    module.manifest = PluginManifest(name=f"bench_{i}", version="1.0", title=f"Bench {i}", description="",
                                     category=Category.other, api=">=1.0")

    @hookimpl
    def praxis_name_search_keys(text: str) -> list[str]:
        return []

    module.praxis_name_search_keys = praxis_name_search_keys
    sys.modules[module.__name__] = module
    return module


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=20000)
    args = parser.parse_args()
    modules = [make_plugin(i) for i in range(N_PLUGINS)]
    eps = [EntryPoint(m.manifest.name, m.__name__, "praxis.plugins") for m in modules]
    tmp = Path(tempfile.mkdtemp())
    key = f"1:{base64.b64encode(os.urandom(32)).decode()}"
    settings = Settings(data_dir=tmp, master_key=key, plugins_file=tmp / "none.toml", embedded_worker=False)
    praxis = bootstrap(settings, entry_points=eps)
    with transaction(praxis.engine) as session:
        clinic = Clinic(name="Bench", country="HU", timezone="Europe/Budapest", locale="hu")
        session.add(clinic)
        session.flush()
        praxis.plugins.seed(session, clinic)
        clinic_id = clinic.id
    for m in modules:
        praxis.plugins.enable(clinic_id, m.manifest.name, Actor(None, "bench"))
    functions = [m.praxis_name_search_keys for m in modules]
    runtime = praxis.runtime

    def direct() -> None:
        for f in functions:
            f("Kovács")

    def per_clinic() -> None:
        runtime.call("praxis_name_search_keys", clinic_id, text="Kovács")

    def collect() -> None:
        runtime.collect("praxis_name_search_keys", text="Kovács")

    def timed(fn) -> float:  # type: ignore[no-untyped-def]
        for _ in range(200):
            fn()
        start = time.perf_counter()
        for _ in range(args.calls):
            fn()
        return (time.perf_counter() - start) / args.calls * 1e6

    base = timed(direct)
    for label, fn in (("per-clinic call (isolated, health-tracked)", per_clinic), ("collect", collect)):
        total = timed(fn)
        print(f"{label}: {total:.1f} µs per call to {N_PLUGINS} plugins; direct calls {base:.1f} µs; "
              f"overhead {total - base:.1f} µs per dispatch, {(total - base) / N_PLUGINS:.2f} µs per plugin")
    praxis.close()


if __name__ == "__main__":
    main()
