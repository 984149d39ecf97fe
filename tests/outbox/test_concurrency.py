"""Several workers draining one outbox: every item handled exactly once (threads and processes)."""

from __future__ import annotations

import multiprocessing
import time
from collections import Counter
from datetime import timedelta

from sqlmodel import Session, select

from core.db import transaction
from core.models.outbox import OutboxItem
from core.outbox.queue import enqueue
from core.outbox.worker import Worker
from tests.conftest import add_clinic
from tests.outbox.conftest import outbox_plugin
from tests.outbox.helpers import ADMIN, count, drain, process_worker


def _fill(praxis, clinic: int, n: int, log: str, crash: int = 0) -> list[str]:
    ids = []
    with transaction(praxis.engine) as session:
        for i in range(n):
            mode = "crash_once" if i < crash else "ok"
            ids.append(str(enqueue(session, plugin="courier", topic="send", payload={"mode": mode, "log": log},
                                   clinic_id=clinic)))
    return ids


def _deliveries(log) -> Counter[str]:
    return Counter(line.split()[0] for line in log.read_text().splitlines())


def test_worker_threads_handle_every_item_exactly_once(make_praxis, tmp_path):
    praxis = make_praxis([outbox_plugin("courier")])
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "courier", ADMIN)
    log = tmp_path / "deliveries.log"
    ids = _fill(praxis, clinic, 300, str(log))
    workers = [Worker(praxis, name=f"t{i}", batch_size=7) for i in range(4)]
    import threading

    threads = [threading.Thread(target=drain, args=(w,)) for w in workers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    deliveries = _deliveries(log)
    assert set(deliveries) == set(ids) and set(deliveries.values()) == {1}
    assert count(praxis, OutboxItem.status == "done") == 300
    with Session(praxis.engine) as session:
        owners = Counter(i.attempts for i in session.exec(select(OutboxItem)))
    assert owners == {1: 300}


def test_worker_processes_handle_every_item_exactly_once_and_recover_crashed_ones(make_praxis, tmp_path):
    """Three worker processes; two items kill their worker after the side effect, before the outcome is
    recorded. A supervisor restarts dead workers; once the lease runs out the item is delivered again."""
    praxis = make_praxis([outbox_plugin("courier")])
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "courier", ADMIN)
    log = tmp_path / "deliveries.log"
    ids = _fill(praxis, clinic, 400, str(log), crash=2)
    crashing = set(ids[:2])
    settings = praxis.settings.model_dump()
    spawn = multiprocessing.get_context("spawn")

    def start(i: int):
        process = spawn.Process(target=process_worker, args=(settings, ["courier"], f"p{i}", 2.0))
        process.start()
        return process

    processes = {i: start(i) for i in range(3)}
    deadline, restarts = time.monotonic() + 120, 0
    while time.monotonic() < deadline:
        for i, process in list(processes.items()):
            if process.exitcode == 3:  # crashed in a handler: restart it, like a supervisor would
                processes[i] = start(i + 10 * (restarts + 1))
                restarts += 1
        if all(p.exitcode == 0 for p in processes.values()):
            break
        time.sleep(0.1)
    for process in processes.values():
        process.join(5)
    # Both crashing items may sit in the batch of the worker that dies on the first of them.
    assert restarts in (1, 2)
    deliveries = _deliveries(log)
    assert set(deliveries) == set(ids)
    assert {k: v for k, v in deliveries.items() if v != 1}.keys() <= crashing
    assert all(deliveries[k] in (1, 2) for k in crashing) and sum(deliveries[k] for k in crashing) == 2 + restarts
    assert count(praxis, OutboxItem.status == "done") == 400
    pids = {line.split()[2] for line in log.read_text().splitlines()}
    assert len(pids) >= 3  # the work really was shared between processes


def test_praxis_worker_command_drains_and_reports(make_praxis, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from core.cli.main import cli
    from core.config import get_settings

    praxis = make_praxis([])
    clinic = add_clinic(praxis)
    with transaction(praxis.engine) as session:
        dead = enqueue(session, plugin="gone", topic="send", payload={}, clinic_id=clinic)
    for key, value in praxis.settings.model_dump().items():
        if value is not None and key != "database_url":
            monkeypatch.setenv(f"PRAXIS_{key.upper()}", str(value))
    monkeypatch.setenv("PRAXIS_DATABASE_URL", praxis.settings.database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    result = runner.invoke(cli, ["worker", "--drain", "-v", "--name", "cli"])
    assert result.exit_code == 0, result.output
    assert "cli: batch: 1 items (skipped 1)" in result.output and "handled 1 item(s)" in result.output
    listed = runner.invoke(cli, ["outbox", "list", "--clinic", str(clinic), "--status", "done"])
    assert str(dead) in listed.output and "gone" in listed.output
    refused = runner.invoke(cli, ["outbox", "retry", str(dead)])
    assert refused.exit_code == 1 and "only dead or unknown items can be retried" in refused.output
    bad = runner.invoke(cli, ["outbox", "retry", "nope"])
    assert bad.exit_code == 1 and "'nope' is not an outbox item id" in bad.output
    get_settings.cache_clear()


def test_lease_is_longer_than_the_handler_timeout():
    import pytest

    with pytest.raises(ValueError, match="lease must be longer"):
        Worker.__init__(object.__new__(Worker), None, handler_timeout=30, lease=timedelta(seconds=30))  # type: ignore[arg-type]
