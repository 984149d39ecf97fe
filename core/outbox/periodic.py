"""Periodic jobs: each due run happens once, whatever the number of workers.

Every worker computes the same *slot* for a job in a clinic (the start of the current period for
``every`` jobs, the latest cron time at or before now in the clinic's time zone for ``cron`` jobs) and
inserts ``(job, clinic, slot)`` into ``core_job_run`` with ``ON CONFLICT DO NOTHING RETURNING``. Only the
worker that gets the row back runs the job. Only the current slot is ever considered, so a worker that
was down for a week runs each job once on its return, not once per missed slot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from cronsim import CronSim, CronSimError
from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from core.clock import now
from core.db import transaction
from core.models.outbox import JobRun
from core.outbox import calls
from plugin_sdk.contributions import PeriodicJob

if TYPE_CHECKING:
    from core.app_context import Praxis

log = logging.getLogger(__name__)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def due_slot(job: PeriodicJob, at: datetime, timezone: str = "UTC") -> datetime:
    """The slot of ``job`` that is due at ``at``: aware UTC, the same in every process."""
    if job.every is not None:
        return EPOCH + ((at - EPOCH) // job.every) * job.every  # exact: timedelta arithmetic, no floats
    assert job.cron is not None
    local = at.astimezone(_zone(timezone)).replace(microsecond=0) + timedelta(seconds=1)
    # Iterating backwards from one second after ``at`` yields the latest match at or before ``at``.
    return next(CronSim(job.cron, local, reverse=True)).astimezone(UTC)


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        log.warning("unknown time zone %r; using UTC for cron jobs", name)
        return ZoneInfo("UTC")


@dataclass(frozen=True)
class RegisteredJob:
    plugin: str
    job: PeriodicJob

    @property
    def key(self) -> str:
        return f"{self.plugin}.{self.job.name}"


def collect_jobs(praxis: Praxis) -> list[RegisteredJob]:
    """Every valid job of every available plugin. Invalid ones are logged and left out."""
    jobs: list[RegisteredJob] = []
    for result in praxis.runtime.collect("praxis_periodic_jobs"):
        seen: set[str] = set()
        for job in result.value or []:
            problem = _problem(result.plugin, job, seen)
            if problem:
                log.error("plugin %s: periodic job ignored: %s", result.plugin, problem)
                continue
            seen.add(job.name)
            jobs.append(RegisteredJob(result.plugin, job))
    return jobs


def _problem(plugin: str, job: Any, seen: set[str]) -> str | None:
    if not isinstance(job, PeriodicJob):
        return f"{job!r} is not a plugin_sdk.PeriodicJob"
    if job.name in seen:
        return f"two jobs are named {job.name!r}"
    if len(f"{plugin}.{job.name}") > 150:
        return f"job name {job.name!r} is too long"
    if job.cron is not None:
        try:
            next(CronSim(job.cron, now()))
        except (CronSimError, ValueError, StopIteration) as exc:
            return f"job {job.name!r}: invalid cron expression {job.cron!r}: {exc}"
    return None


class Scheduler:
    """Runs the due periodic jobs of one worker. Not thread-safe: one per worker."""

    def __init__(self, praxis: Praxis, owner: str, *, job_timeout: float = 60.0) -> None:
        self.praxis = praxis
        self.owner = owner
        self.job_timeout = job_timeout
        self.jobs = collect_jobs(praxis)
        self._attempted: dict[tuple[str, int], datetime] = {}  # (job key, clinic) -> last slot tried

    def tick(self) -> int:
        """Claim and run every job whose current slot no worker has claimed yet. Returns runs made here."""
        if not self.jobs:
            return 0
        runtime = self.praxis.runtime
        snap = runtime.snapshot()
        available = set(runtime.available())
        at = now()
        ran = 0
        for registered in self.jobs:
            if registered.plugin not in available:
                continue
            for clinic_id, clinic in snap.clinics.items():
                if registered.plugin not in snap.enabled_in(clinic_id):
                    continue
                if snap.circuit_open(clinic_id, registered.plugin, runtime.circuit_cooldown, at):
                    continue  # postponed: tried again within the slot once the circuit closes
                slot = due_slot(registered.job, at, clinic.timezone)
                if self._attempted.get((registered.key, clinic_id)) == slot:
                    continue
                run_id = self._claim(registered, clinic_id, slot)
                self._attempted[(registered.key, clinic_id)] = slot
                if run_id is not None:
                    self._run(registered, clinic_id, run_id)
                    ran += 1
        return ran

    def _claim(self, registered: RegisteredJob, clinic_id: int, slot: datetime) -> int | None:
        with transaction(self.praxis.engine) as session:
            build = postgresql.insert if _dialect(session) == "postgresql" else sqlite.insert
            statement = (
                build(JobRun)
                .values(job=registered.key, clinic_id=clinic_id, slot=slot, claimed_by=self.owner, started_at=now())
                .on_conflict_do_nothing(index_elements=["job", "clinic_id", "slot"])
                .returning(col(JobRun.id))
            )
            return session.execute(statement).scalar_one_or_none()

    def _run(self, registered: RegisteredJob, clinic_id: int, run_id: int) -> None:
        runtime = self.praxis.runtime
        error: str | None = None
        try:
            ctx = runtime.context(registered.plugin, clinic_id)
            calls.call(registered.job.run, [ctx], self.job_timeout, name=f"job-{registered.key}")
        except calls.CallTimeout as exc:
            error = f"{exc} (left running in the background)"
        except (Exception, SystemExit) as exc:
            error = f"{type(exc).__name__}: {exc}"
        with transaction(self.praxis.engine) as session:
            session.execute(
                update(JobRun).where(col(JobRun.id) == run_id)
                .values(finished_at=now(), error=error[:4000] if error else None)
            )
        if error:
            runtime.health.record_failure(clinic_id, registered.plugin, f"periodic job {registered.job.name}: {error}")
        else:
            runtime.health.record_success(clinic_id, registered.plugin)


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name
