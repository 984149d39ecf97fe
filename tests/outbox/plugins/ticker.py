"""Test plugin with periodic jobs: one every minute, one nightly by cron, one failing, one invalid."""

from __future__ import annotations

import os
import threading
from datetime import timedelta

from plugin_sdk import Category, PeriodicJob, PluginManifest, hookimpl

manifest = PluginManifest(name="ticker", version="1.0.0", title="Ticker", description="Periodic jobs.",
                          category=Category.other, api=">=1.0,<2")

RUNS: list[tuple[str, int, str]] = []  # (job name, clinic id, ctx.now())
_lock = threading.Lock()


def _job(name):
    def run(ctx):
        with _lock:
            RUNS.append((name, ctx.clinic.id, ctx.now().isoformat()))
        path = os.environ.get("TICKER_LOG")
        if path:
            with open(path, "a") as handle:
                handle.write(f"{name} {ctx.clinic.id} {os.getpid()}\n")
        if name == "failing":
            raise RuntimeError("reconciliation failed")
    return run


@hookimpl
def praxis_periodic_jobs():
    return [
        PeriodicJob(name="every_minute", run=_job("every_minute"), every=timedelta(minutes=1)),
        PeriodicJob(name="nightly", run=_job("nightly"), cron="30 2 * * *"),
        PeriodicJob(name="failing", run=_job("failing"), every=timedelta(hours=1)),
        PeriodicJob(name="bad_cron", run=_job("bad_cron"), cron="61 * * * *"),
    ]
