"""Periodic jobs: due slots, once per slot whatever the number of workers, failures recorded."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from core.models.outbox import JobRun
from core.models.plugin import PluginHealth
from core.outbox.periodic import due_slot
from core.outbox.worker import Worker
from plugin_sdk import PeriodicJob
from tests.conftest import add_clinic
from tests.outbox.conftest import outbox_plugin
from tests.outbox.helpers import ADMIN
from tests.outbox.plugins import ticker


def _noop(ctx):
    return None


def test_every_slots_are_aligned_periods():
    job = PeriodicJob(name="j", run=_noop, every=timedelta(minutes=15))
    at = datetime(2026, 3, 10, 10, 44, 59, 999999, tzinfo=UTC)
    assert due_slot(job, at) == datetime(2026, 3, 10, 10, 30, tzinfo=UTC)
    assert due_slot(job, at + timedelta(microseconds=1)) == datetime(2026, 3, 10, 10, 45, tzinfo=UTC)


def test_cron_slots_are_the_latest_match_in_the_clinics_zone():
    job = PeriodicJob(name="j", run=_noop, cron="30 2 * * *")
    at = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    assert due_slot(job, at, "Europe/Budapest") == datetime(2026, 3, 10, 1, 30, tzinfo=UTC)
    assert due_slot(job, at, "Asia/Seoul") == datetime(2026, 3, 9, 17, 30, tzinfo=UTC)
    exactly = datetime(2026, 3, 10, 1, 30, tzinfo=UTC)
    assert due_slot(job, exactly, "Europe/Budapest") == exactly
    assert due_slot(job, exactly - timedelta(microseconds=1), "Europe/Budapest") == exactly - timedelta(days=1)
    # Across the spring DST change (29 March 2026 in Budapest, 02:30 does not exist) cron runs at 03:00.
    after = datetime(2026, 3, 29, 12, 0, tzinfo=UTC)
    assert due_slot(job, after, "Europe/Budapest") == datetime(2026, 3, 29, 1, 0, tzinfo=UTC)


def runs(praxis) -> list[tuple[str, int, datetime]]:
    with Session(praxis.engine) as session:
        return sorted((r.job, r.clinic_id, r.slot) for r in session.exec(select(JobRun)))


def test_each_slot_runs_once_with_three_workers_and_missed_slots_are_not_back_filled(make_praxis, frozen):
    praxis = make_praxis([outbox_plugin("ticker")])
    budapest, seoul = add_clinic(praxis, "Budapest"), add_clinic(praxis, "Seoul", "KR", "Asia/Seoul", "ko")
    elsewhere = add_clinic(praxis, "Elsewhere")
    for clinic in (budapest, seoul):
        praxis.plugins.enable(clinic, "ticker", ADMIN)
    workers = [Worker(praxis, name=f"w{i}") for i in range(3)]

    def round_of_three() -> None:
        barrier = threading.Barrier(3)

        def go(worker: Worker) -> None:
            barrier.wait()
            worker.run_once()

        threads = [threading.Thread(target=go, args=(w,)) for w in workers]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()

    round_of_three()  # 10:00:30 UTC
    minute = datetime(2026, 3, 10, 10, 0, tzinfo=UTC)
    expected = {
        ("ticker.every_minute", budapest, minute), ("ticker.every_minute", seoul, minute),
        ("ticker.nightly", budapest, datetime(2026, 3, 10, 1, 30, tzinfo=UTC)),
        ("ticker.nightly", seoul, datetime(2026, 3, 9, 17, 30, tzinfo=UTC)),
        ("ticker.failing", budapest, minute), ("ticker.failing", seoul, minute),
    }
    assert set(runs(praxis)) == expected and len(runs(praxis)) == 6
    assert sorted((name, clinic) for name, clinic, _ in ticker.RUNS) == sorted(
        [("every_minute", budapest), ("every_minute", seoul), ("nightly", budapest), ("nightly", seoul),
         ("failing", budapest), ("failing", seoul)])
    assert all(clinic != elsewhere for _, clinic, _ in ticker.RUNS)
    round_of_three()  # same slot: nothing more
    assert len(ticker.RUNS) == 6
    frozen.advance(seconds=30)  # 10:01:00
    round_of_three()
    assert [(n, c) for n, c, _ in ticker.RUNS[6:]].count(("every_minute", budapest)) == 1
    assert len(ticker.RUNS) == 8
    frozen.advance(hours=3)  # three hours of missed minutes run once, not 180 times
    round_of_three()
    assert [n for n, _, _ in ticker.RUNS[8:]].count("every_minute") == 2
    assert [n for n, _, _ in ticker.RUNS[8:]].count("failing") == 2  # hourly: its newest slot, once


def test_job_failures_are_recorded_and_counted_against_the_plugin(make_praxis, frozen):
    praxis = make_praxis([outbox_plugin("ticker")])
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "ticker", ADMIN)
    worker = Worker(praxis, name="w")
    assert {j.key for j in worker.scheduler.jobs} == {"ticker.every_minute", "ticker.nightly", "ticker.failing"}
    worker.run_once()
    with Session(praxis.engine) as session:
        failed = session.exec(select(JobRun).where(JobRun.job == "ticker.failing")).one()
        fine = session.exec(select(JobRun).where(JobRun.job == "ticker.every_minute")).one()
        health = session.exec(select(PluginHealth).where(PluginHealth.plugin == "ticker")).one()
    assert failed.error == "RuntimeError: reconciliation failed" and failed.finished_at == frozen.at
    assert fine.error is None and fine.finished_at == frozen.at and fine.claimed_by == worker.owner
    assert health.total_failures == 1 and "periodic job failing" in health.last_error


def test_jobs_do_not_run_where_the_plugin_is_disabled_or_its_circuit_open(make_praxis, frozen):
    praxis = make_praxis([outbox_plugin("ticker")], circuit_threshold=1)
    clinic = add_clinic(praxis)
    praxis.plugins.enable(clinic, "ticker", ADMIN)
    worker = Worker(praxis, name="w")
    worker.run_once()  # the failing job opens the circuit (threshold 1)
    frozen.advance(minutes=1)
    worker.run_once()
    assert [n for n, _, _ in ticker.RUNS].count("every_minute") == 1
    frozen.advance(minutes=5)  # cooldown over: runs again
    worker.run_once()
    assert [n for n, _, _ in ticker.RUNS].count("every_minute") == 2
    praxis.plugins.disable(clinic, "ticker", ADMIN)
    frozen.advance(minutes=1)
    worker.run_once()
    assert [n for n, _, _ in ticker.RUNS].count("every_minute") == 2
