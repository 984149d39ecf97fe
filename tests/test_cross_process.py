"""A change made in one process takes effect in another running process without a restart."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import time

from core.audit import Actor
from tests.conftest import add_clinic, fixture_plugin

WATCHER = textwrap.dedent("""
    import sys, time
    from core.app_context import bootstrap
    from core.config import Settings
    from tests.conftest import fixture_plugin
    settings = Settings(data_dir=sys.argv[1], database_url=sys.argv[2], master_key=sys.argv[3],
                        plugins_file=sys.argv[4], state_refresh_seconds=1.0, embedded_worker=False)
    praxis = bootstrap(settings, entry_points=[fixture_plugin("greeter")], migrate=False)
    clinic = int(sys.argv[5])
    print("ready", praxis.runtime.enabled(clinic), flush=True)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if praxis.runtime.enabled(clinic) == ["greeter"]:
            print("seen", flush=True)
            break
        time.sleep(0.1)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if praxis.runtime.enabled(clinic) == []:
            print("gone", flush=True)
            break
        time.sleep(0.1)
""")


def test_enable_and_disable_reach_another_running_process(make_praxis, tmp_path):
    praxis = make_praxis([fixture_plugin("greeter")])
    clinic = add_clinic(praxis)
    s = praxis.settings
    watcher = subprocess.Popen(
        [sys.executable, "-c", WATCHER, str(s.data_dir), s.url, s.master_key, str(s.plugins_file), str(clinic)],
        stdout=subprocess.PIPE, text=True, cwd=str(__import__("pathlib").Path(__file__).parents[1]),
    )
    try:
        assert watcher.stdout.readline().strip() == "ready []"
        started = time.monotonic()
        praxis.plugins.enable(clinic, "greeter", Actor(None, "t"))
        assert watcher.stdout.readline().strip() == "seen"
        assert time.monotonic() - started < 5
        praxis.plugins.disable(clinic, "greeter", Actor(None, "t"))
        assert watcher.stdout.readline().strip() == "gone"
    finally:
        watcher.kill()
        watcher.wait()
