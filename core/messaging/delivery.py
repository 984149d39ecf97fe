"""Sending messages through the clinic's messaging provider, and what comes back: delivery reports and replies.

The core outbox handlers registered here (see ``core.outbox.core_handlers``):

* ``core.message.send``: one message. Picks the first plugin enabled in the clinic that provides a
  ``MessagingProvider`` for the message's channel, and hands it the message with the message's own
  idempotency key. States: ``queued`` -> ``sending`` (committed *before* the vendor is called) -> ``sent`` /
  ``delivered`` / ``failed``. A message found in ``sending`` was handed to a vendor whose answer was never
  recorded (a crash, a timeout, a lost lease): a vendor that deduplicates gets it again under the same key;
  any other vendor is asked first (``query_status``), and if it cannot tell, the message becomes ``unknown``
  for a person to decide. Nothing is ever sent twice silently.
* ``core.messaging.daily``: the date-based rules of one clinic day; queues the next day's run first.
* ``core.messaging.poll``: asks vendors about messages sent a while ago without a delivery report.
* ``core.messaging.event``: a domain event a plugin reports (``lab.result_ready``, ``<plugin>.<event>``).

Retries are the message's own: each attempt is a fresh outbox item due after an exponential backoff, and
``core_message.outbox_item_id`` fences them, so a superseded item (the appointment moved, a retry queued)
does nothing. Provider failures are counted against the provider plugin (its circuit opens after repeated
failures and its messages wait for the cooldown).
"""

from __future__ import annotations

import logging
import uuid
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import phonenumbers
from sqlalchemy import event, update
from sqlmodel import Session, col, select

from core.audit import Actor
from core.clock import now
from core.db import reader, transaction
from core.messaging import placeholders, planner, render
from core.messaging.event_kinds import EVENT_TOPIC, LAB_RESULT_READY
from core.messaging.recipients import check_email, check_phone
from core.messaging.templates import RenderError
from core.models.clinic import Clinic
from core.models.messaging import (
    InboundReply,
    Message,
    MessageStatus,
    OptOut,
    QuietHours,
)
from core.outbox import core_handlers
from core.outbox.queue import enqueue
from core.outbox.worker import backoff
from plugin_sdk.context import OutboxMessage
from plugin_sdk.errors import PermanentError, RetryableError, UnknownOutcomeError
from plugin_sdk.providers import (
    DeliveryReport,
    DeliveryStatus,
    InboundMessage,
    MessagingProvider,
    OutgoingMessage,
    SendResult,
)

if TYPE_CHECKING:
    from core.app_context import Praxis
    from core.plugins.runtime import PluginRuntime

log = logging.getLogger(__name__)

DAILY_TOPIC = "core.messaging.daily"
POLL_TOPIC = "core.messaging.poll"

NO_PROVIDER_WAIT = timedelta(minutes=10)
CHECK_DELAY = timedelta(seconds=60)  # before asking a vendor about a send whose answer was lost
MAX_SEND_ATTEMPTS = 15
POLL_AFTER = timedelta(minutes=10)  # ask about a sent message this long after sending
POLL_EVERY = timedelta(minutes=10)
POLL_WINDOW = timedelta(days=3)  # stop asking after this long
POLL_BATCH = 200
DAILY_AT = time(0, 5)
CHANNEL_WORDS = {"sms": "SMS", "email": "e-mail"}


# --- providers ---------------------------------------------------------------------------------------

_providers: weakref.WeakKeyDictionary[Any, list[tuple[str, MessagingProvider]]] = weakref.WeakKeyDictionary()


def providers(runtime: PluginRuntime) -> list[tuple[str, MessagingProvider]]:
    """(plugin, provider) for every messaging provider of the available plugins, in install order."""
    found = _providers.get(runtime)
    if found is None:
        found = []
        for result in runtime.collect("praxis_messaging_providers"):
            for provider in result.value or []:
                if isinstance(provider, MessagingProvider) and getattr(provider, "channel", None) in ("sms", "email"):
                    found.append((result.plugin, provider))
                else:
                    log.error("plugin %s returned %r from praxis_messaging_providers; ignored", result.plugin,
                              provider)
        order = {name: i for i, name in enumerate(runtime.order)}
        found.sort(key=lambda pair: order.get(pair[0], len(order)))
        _providers[runtime] = found
    return found


@dataclass(frozen=True)
class Choice:
    plugin: str | None = None
    provider: MessagingProvider | None = None
    wait_until: datetime | None = None  # every provider's circuit is open until then
    reason: str | None = None


def choose_provider(runtime: PluginRuntime, clinic_id: int, channel: str, *, sticky: str | None = None) -> Choice:
    """The provider to use: ``sticky`` (the vendor that may already have the message) or the first enabled one
    for the channel whose circuit is closed."""
    enabled = runtime.enabled(clinic_id, include_open_circuits=True)
    candidates = [(p, prov) for p, prov in providers(runtime) if prov.channel == channel and p in enabled]
    if sticky is not None:
        candidates = [(p, prov) for p, prov in candidates if p == sticky]
        if not candidates:
            return Choice(reason=f"the plugin that may have sent it ({sticky}) is no longer enabled")
    if not candidates:
        return Choice(reason=f"no {CHANNEL_WORDS.get(channel, channel)} provider enabled")
    snap = runtime.snapshot()
    at = now()
    for plugin, provider in candidates:
        if not snap.circuit_open(clinic_id, plugin, runtime.circuit_cooldown, at):
            return Choice(plugin, provider)
    until = min(h.opened_at + runtime.circuit_cooldown for p, _ in candidates
                if (h := snap.health.get((clinic_id, p))) is not None and h.opened_at is not None)
    names = ", ".join(sorted({p for p, _ in candidates}))
    return Choice(wait_until=until, reason=f"paused after repeated failures of {names}")


# --- state changes -----------------------------------------------------------------------------------


def _set(session: Session, message_id: uuid.UUID, states: tuple[str, ...], item_id: uuid.UUID | None = None,
         **values: Any) -> bool:
    """Conditional update: only while the message is in ``states`` (and, if given, owned by ``item_id``)."""
    query = update(Message).where(Message.id == message_id, col(Message.status).in_(states))
    if item_id is not None:
        query = query.where(Message.outbox_item_id == item_id)
    values.setdefault("updated_at", now())
    return session.execute(query.values(**values).returning(col(Message.id))
                           .execution_options(synchronize_session=False)).first() is not None


def _finish_values(status: str, code: str | None, reason: str | None) -> dict[str, Any]:
    return {"status": status, "error_code": code, "reason": (reason or "")[:1000] or None, "finished_at": now(),
            "outbox_item_id": None}


def _requeue_values(session: Session, message: Message, at: datetime, reason: str | None) -> dict[str, Any]:
    return {"outbox_item_id": planner.requeue(session, message, at), "reason": (reason or "")[:1000] or None}


def apply_result(session: Session, message: Message, result: SendResult, *, plugin: str,
                 from_states: tuple[str, ...]) -> str | None:
    """Record what the vendor says became of the message. Returns the new status, or None if nothing changed."""
    at = now()
    values: dict[str, Any] = {"provider_plugin": plugin, "outbox_item_id": None}
    if result.vendor_message_id:
        values["vendor_message_id"] = result.vendor_message_id[:100]
    if result.status in (DeliveryStatus.queued, DeliveryStatus.sent):
        values.update(status=MessageStatus.sent, sent_at=message.sent_at or at, reason=None, error_code=None)
    elif result.status == DeliveryStatus.delivered:
        values.update(status=MessageStatus.delivered, sent_at=message.sent_at or at, delivered_at=at,
                      finished_at=at, reason=None, error_code=None)
    elif result.status == DeliveryStatus.failed:
        values.update(_finish_values(MessageStatus.failed, (result.error_code or "vendor_failed")[:64],
                                     result.error_message or f"the vendor refused the message ({result.error_code})"))
    else:
        values.update(status=MessageStatus.unknown, reason="the vendor cannot tell whether the message was sent; "
                      "decide: mark as sent, send again or give up")
    if not _set(session, message.id, from_states, **values):
        return None
    if values["status"] in (MessageStatus.sent, MessageStatus.delivered):
        ensure_poll(session, message.clinic_id, at)
    return str(values["status"])


def _address_problem(message: Message, country: str) -> str | None:
    if message.channel == "sms":
        return check_phone(message.address, country)[1]
    return check_email(message.address)[1]


# --- core.message.send ---------------------------------------------------------------------------------


def send_message(praxis: Praxis, item: OutboxMessage, _plugin: str) -> dict[str, Any]:
    message_id = uuid.UUID(str(item.payload["message_id"]))
    runtime = praxis.runtime
    # The provider is picked before the transaction (the item names the channel), so the usual first attempt
    # checks the message and marks it as being sent in one short write.
    channel = item.payload.get("channel")
    early = choose_provider(runtime, item.clinic_id, str(channel)) \
        if channel and item.clinic_id is not None else None
    claimed = False
    at = now()
    # A text that may need a plugin is written before the transaction (a plugin is never called inside one);
    # without plugins' placeholders in the clinic, inside it, where the message is read anyway.
    outside = item.clinic_id is not None and placeholders.plugins_in(runtime, item.clinic_id)
    written = _write_text(praxis, message_id, item.id, at) if outside else None
    with transaction(praxis.engine) as session:
        message = session.exec(select(Message).where(Message.id == message_id).with_for_update()).first()
        if message is None:
            return {"skipped": "message not found"}
        if message.outbox_item_id != item.id:
            return {"skipped": "superseded by a newer attempt"}
        if message.status not in (MessageStatus.queued, MessageStatus.sending):
            return {"skipped": f"message is {message.status}"}
        if message.status == MessageStatus.queued:
            clinic = session.get(Clinic, message.clinic_id)
            assert clinic is not None
            outcome = _before_first_send(session, message, clinic.country, ZoneInfo(clinic.timezone), at, item.id)
            if outcome is not None:
                return outcome
            text: dict[str, Any] = {}
            if render.needs_text(message):
                if written is None and not outside:
                    written = render.write(runtime, render.load_one(session, message), defer_plugins=True)[message.id]
                outcome = _text_problem(session, message, item.id, written)
                if outcome is not None:
                    return outcome
                assert isinstance(written, render.Text)
                text = written.values()
            if early is not None and early.provider is not None and early.provider.channel == message.channel \
                    and message.attempts < MAX_SEND_ATTEMPTS:
                claimed = _set(session, message.id, (MessageStatus.queued,), item.id, status=MessageStatus.sending,
                               provider_plugin=early.plugin, attempts=message.attempts + 1, **text)
            elif text and not _set(session, message.id, (MessageStatus.queued,), item.id, **text):
                return {"skipped": "message changed meanwhile"}
            for name, value in text.items():
                setattr(message, name, value)
        session.expunge(message)
    uncertain = message.status == MessageStatus.sending
    choice = early if claimed and early is not None else choose_provider(
        runtime, message.clinic_id, message.channel, sticky=message.provider_plugin if uncertain else None)
    if choice.provider is None:
        return _no_provider(praxis, message, item.id, choice, uncertain)
    plugin, provider = choice.plugin, choice.provider
    assert plugin is not None
    ctx = runtime.context(plugin, message.clinic_id)
    outgoing = OutgoingMessage(channel=message.channel, to=message.address, body=message.body,
                               idempotency_key=message.idempotency_key, subject=message.subject or None,
                               metadata={"message_id": str(message.id), "clinic_id": message.clinic_id})
    if not claimed:
        if uncertain and not provider.deduplicates:
            return _check_before_resend(praxis, message, item.id, plugin, provider, ctx, outgoing)
        if message.attempts >= MAX_SEND_ATTEMPTS:
            with transaction(praxis.engine) as session:
                _set(session, message.id, (MessageStatus.queued, MessageStatus.sending), item.id, **_finish_values(
                    MessageStatus.failed, "attempts_exhausted",
                    f"gave up after {message.attempts} attempts: {message.reason or 'no answer'}"))
            return {"failed": "attempts exhausted"}
        with transaction(praxis.engine) as session:
            if not _set(session, message.id, (MessageStatus.queued, MessageStatus.sending), item.id,
                        status=MessageStatus.sending, provider_plugin=plugin, attempts=message.attempts + 1):
                return {"skipped": "message changed meanwhile"}
    message.attempts += 1
    try:
        result = provider.send(ctx, outgoing)
    except PermanentError as exc:
        with transaction(praxis.engine) as session:
            _set(session, message.id, (MessageStatus.sending,), **_finish_values(
                MessageStatus.failed, (exc.code or "vendor_refused")[:64], f"{runtime.title(plugin)}: {exc}"))
        return {"failed": str(exc), "code": exc.code}
    except RetryableError as exc:  # the vendor did not take it: safe to send again later
        runtime.health.record_failure(message.clinic_id, plugin, f"sending a message: {exc}")
        delay = timedelta(seconds=backoff(message.attempts, exc.retry_after))
        with transaction(praxis.engine) as session:
            _set(session, message.id, (MessageStatus.sending,), status=MessageStatus.queued,
                 error_code=(exc.code or "retryable")[:64],
                 **_requeue_values(session, message, now() + delay, f"{runtime.title(plugin)}: {exc}; "
                                   f"trying again in {int(delay.total_seconds())} s"))
        return {"retry": str(exc)}
    except (UnknownOutcomeError, Exception) as exc:  # it may have been sent: never blindly again
        runtime.health.record_failure(message.clinic_id, plugin, f"sending a message: {type(exc).__name__}: {exc}")
        wait = timedelta(seconds=backoff(message.attempts)) if provider.deduplicates else CHECK_DELAY
        what = "sending again under the same key" if provider.deduplicates else "asking the vendor"
        with transaction(praxis.engine) as session:
            _set(session, message.id, (MessageStatus.sending,), error_code="unknown_outcome",
                 **_requeue_values(session, message, now() + wait,
                                   f"{runtime.title(plugin)}: {exc}; the message may have been sent, {what} in "
                                   f"{int(wait.total_seconds())} s"))
        return {"uncertain": str(exc)}
    runtime.health.record_success(message.clinic_id, plugin)
    return _record(praxis, message, result, plugin)


def _write_text(praxis: Praxis, message_id: uuid.UUID, item_id: uuid.UUID,
                at: datetime) -> render.Text | RenderError | None:
    """The text of a message about to go out that has none yet (None if it has one or is not going out now)."""
    with Session(reader(praxis.engine)) as session:
        message = session.get(Message, message_id)
        if message is None or message.outbox_item_id != item_id or message.status != MessageStatus.queued \
                or not render.needs_text(message) or message.planned_for > at + timedelta(seconds=1):
            return None
        sources = render.load_one(session, message)
    return render.write(praxis.runtime, sources)[message_id]


def _text_problem(session: Session, message: Message, item_id: uuid.UUID,
                  written: render.Text | RenderError | None) -> dict[str, Any] | None:
    """What becomes of a message whose text could not be written (None if it was)."""
    if isinstance(written, render.Text):
        return None
    if written is None:  # changed between the read and the lock: write it in a moment
        _set(session, message.id, (MessageStatus.queued,), item_id, outbox_item_id=planner.requeue(session, message,
                                                                                                   now()))
        return {"rescheduled": "the message changed while its text was written"}
    wait = placeholders.retry_delay(written, message.attempts + 1)
    if wait is None or message.attempts >= MAX_SEND_ATTEMPTS:
        _set(session, message.id, (MessageStatus.queued,), item_id,
             **_finish_values(MessageStatus.failed, written.code, written.reason))
        return {"failed": written.reason, "code": written.code}
    attempts = message.attempts + (0 if written.retry_at is not None else 1)  # a paused plugin is not a try
    _set(session, message.id, (MessageStatus.queued,), item_id, attempts=attempts, error_code=written.code,
         **_requeue_values(session, message, now() + wait, f"{written.reason}; trying again in "
                           f"{int(wait.total_seconds())} s"))
    return {"retry": written.reason}


def _before_first_send(session: Session, message: Message, country: str, tz: ZoneInfo, at: datetime,
                       item_id: uuid.UUID) -> dict[str, Any] | None:
    """Checks before a queued message goes out; an answer here means it does not go out now."""
    if message.planned_for > at + timedelta(seconds=1):  # re-timed after this item was queued
        _set(session, message.id, (MessageStatus.queued,), item_id,
             outbox_item_id=planner.requeue(session, message, message.planned_for))
        return {"rescheduled": message.planned_for.isoformat()}
    if message.expires_at is not None and at >= message.expires_at:
        _set(session, message.id, (MessageStatus.queued,), item_id, **_finish_values(
            MessageStatus.failed, "expired", "not sent in time: the appointment has started"))
        return {"failed": "expired"}
    if message.patient_id is not None and session.exec(select(OptOut.id).where(
            OptOut.patient_id == message.patient_id, OptOut.channel == message.channel)).first() is not None:
        _set(session, message.id, (MessageStatus.queued,), item_id, **_finish_values(
            MessageStatus.cancelled, "opted_out", f"the patient opted out of {CHANNEL_WORDS[message.channel]}"))
        return {"cancelled": "opted out"}
    later = planner.out_of_quiet_hours(at, session.get(QuietHours, message.clinic_id), tz)
    if later > at:
        _set(session, message.id, (MessageStatus.queued,), item_id, planned_for=later,
             outbox_item_id=planner.requeue(session, message, later))
        return {"quiet_hours_until": later.isoformat()}
    problem = _address_problem(message, country)
    if problem is not None:
        _set(session, message.id, (MessageStatus.queued,), item_id,
             **_finish_values(MessageStatus.failed, "invalid_address", problem))
        return {"failed": problem}
    return None


def _no_provider(praxis: Praxis, message: Message, item_id: uuid.UUID, choice: Choice,
                 uncertain: bool) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        if uncertain and choice.wait_until is None:  # the vendor that may have it is gone: nobody can ask it
            _set(session, message.id, (MessageStatus.sending,), item_id, status=MessageStatus.unknown,
                 outbox_item_id=None, reason=f"{choice.reason}; it may have been sent: decide whether to mark it "
                                             "as sent, send it again or give up")
            return {"unknown": choice.reason}
        at = choice.wait_until or now() + NO_PROVIDER_WAIT
        _set(session, message.id, (MessageStatus.queued, MessageStatus.sending), item_id,
             **_requeue_values(session, message, at, f"waiting: {choice.reason}"))
    return {"waiting": choice.reason}


def _check_before_resend(praxis: Praxis, message: Message, item_id: uuid.UUID, plugin: str,
                         provider: MessagingProvider, ctx: Any, outgoing: OutgoingMessage) -> dict[str, Any]:
    runtime = praxis.runtime
    try:
        result = provider.query_status(ctx, outgoing)
    except RetryableError as exc:
        runtime.health.record_failure(message.clinic_id, plugin, f"asking about a message: {exc}")
        delay = timedelta(seconds=backoff(message.attempts + 1, exc.retry_after))
        with transaction(praxis.engine) as session:
            _set(session, message.id, (MessageStatus.sending,), item_id, **_requeue_values(
                session, message, now() + delay, f"could not ask {runtime.title(plugin)} whether the message was "
                f"sent: {exc}; asking again in {int(delay.total_seconds())} s"))
        return {"retry": str(exc)}
    except Exception as exc:  # the vendor refused to say: a person decides
        result = None
        log.warning("status query for message %s failed: %s", message.id, exc)
    if result is None or result.status == DeliveryStatus.unknown:
        with transaction(praxis.engine) as session:
            _set(session, message.id, (MessageStatus.sending,), item_id, status=MessageStatus.unknown,
                 outbox_item_id=None, error_code="unknown_outcome",
                 reason=f"{runtime.title(plugin)} cannot tell whether the message was sent; decide: mark it as "
                        "sent, send it again or give up")
        return {"unknown": "vendor cannot tell"}
    return _record(praxis, message, result, plugin)


def _record(praxis: Praxis, message: Message, result: SendResult, plugin: str) -> dict[str, Any]:
    with transaction(praxis.engine) as session:
        status = apply_result(session, message, result, plugin=plugin,
                              from_states=(MessageStatus.sending, MessageStatus.unknown, MessageStatus.queued))
    if status in (MessageStatus.sent, MessageStatus.delivered) and message.set_communication_status \
            and message.appointment_id is not None:
        set_communication_status(praxis, message.clinic_id, message.appointment_id, message.set_communication_status)
    return {"status": status, "vendor_message_id": result.vendor_message_id}


def set_communication_status(praxis: Praxis, clinic_id: int, appointment_id: int, code: str) -> None:
    """Set the appointment's communication status through the appointment book (history, audit, event)."""
    from core.scheduling import appointments
    from core.scheduling.errors import SchedulingError
    from plugin_sdk.errors import ValidationFailed

    try:
        current = appointments.get(praxis, clinic_id, appointment_id)
        if current.get("communication_status") == code:
            return
        appointments.update(praxis, clinic_id, appointment_id, {"communication_status": code},
                            appointments.Caller(Actor.system("messaging")))
    except (SchedulingError, ValidationFailed) as exc:
        log.warning("could not set communication status %r on appointment %s: %s", code, appointment_id, exc)


# --- periodic work, as self-requeuing core items ------------------------------------------------------


def ensure_daily(session: Session, clinic_id: int, day: date, tz: ZoneInfo, *, at: datetime | None = None) -> None:
    """Queue the date-based planning of ``day`` (once: the dedupe key names the clinic and the day)."""
    enqueue(session, plugin=core_handlers.CORE_PLUGIN, topic=DAILY_TOPIC, payload={"day": day.isoformat()},
            clinic_id=clinic_id, dedupe_key=f"{DAILY_TOPIC}:{clinic_id}:{day.isoformat()}",
            available_at=at or planner.local_at(day, DAILY_AT, tz))


def run_daily(praxis: Praxis, item: OutboxMessage, _plugin: str) -> dict[str, Any]:
    assert item.clinic_id is not None
    day = date.fromisoformat(str(item.payload["day"]))
    with transaction(praxis.engine) as session:
        clinic = session.get(Clinic, item.clinic_id)
        if clinic is None:
            return {"skipped": "clinic not found"}
        tz = ZoneInfo(clinic.timezone)
        today = now().astimezone(tz).date()
        ensure_daily(session, item.clinic_id, max(day, today) + timedelta(days=1), tz)  # the chain goes on first
    if day < today - timedelta(days=1):
        return {"skipped": f"{day} is long past"}
    with transaction(praxis.engine) as session:
        made = planner.plan_daily(session, item.clinic_id, day)
    return {"day": day.isoformat(), "messages": made}


def _poll_slot(at: datetime) -> datetime:
    """The first poll slot at or after ``at`` (slots are shared, so one poll item serves many messages)."""
    epoch = datetime(2000, 1, 1, tzinfo=at.tzinfo)
    return epoch - ((epoch - at) // POLL_EVERY) * POLL_EVERY


_polls_queued: dict[int, datetime] = {}  # clinic -> the latest poll slot this process queued (a cache only)


def ensure_poll(session: Session, clinic_id: int, after: datetime) -> None:
    """Queue the poll of the slot after ``after + POLL_AFTER`` (one item per clinic and slot: a dedupe key)."""
    slot = _poll_slot(after + POLL_AFTER)
    if _polls_queued.get(clinic_id) == slot:
        return  # this process queued it already; the dedupe key would make a second insert a no-op anyway
    enqueue(session, plugin=core_handlers.CORE_PLUGIN, topic=POLL_TOPIC, payload={}, clinic_id=clinic_id,
            dedupe_key=f"{POLL_TOPIC}:{clinic_id}:{slot.isoformat()}", available_at=slot)
    session.info.setdefault("praxis.messaging.polls", []).append((clinic_id, slot))


@event.listens_for(Session, "after_commit")
def _remember_polls(session: Session) -> None:
    for clinic_id, slot in session.info.pop("praxis.messaging.polls", ()):
        _polls_queued[clinic_id] = slot


@event.listens_for(Session, "after_rollback")
def _forget_polls(session: Session) -> None:
    session.info.pop("praxis.messaging.polls", None)


def run_poll(praxis: Praxis, item: OutboxMessage, _plugin: str) -> dict[str, Any]:
    """Ask the vendors about messages sent a while ago that have no delivery report yet."""
    assert item.clinic_id is not None
    clinic_id = item.clinic_id
    at = now()
    with transaction(praxis.engine) as session:
        rows = session.exec(select(Message).where(
            Message.clinic_id == clinic_id, Message.status == MessageStatus.sent,
            col(Message.sent_at) <= at - POLL_AFTER, col(Message.sent_at) >= at - POLL_WINDOW,
            (col(Message.polled_at).is_(None)) | (col(Message.polled_at) <= at - POLL_AFTER),
        ).order_by(col(Message.sent_at)).limit(POLL_BATCH)).all()
        session.expunge_all()
    asked = changed = 0
    by_plugin = {(p, prov.channel): prov for p, prov in reversed(providers(praxis.runtime))}
    enabled = set(praxis.runtime.enabled(clinic_id))
    for message in rows:
        plugin = message.provider_plugin
        provider = by_plugin.get((plugin or "", message.channel))
        if plugin is None or provider is None or plugin not in enabled:
            continue
        outgoing = OutgoingMessage(channel=message.channel, to=message.address, body=message.body,
                                   idempotency_key=message.idempotency_key, subject=message.subject or None)
        try:
            result = provider.query_status(praxis.runtime.context(plugin, clinic_id), outgoing)
        except Exception as exc:
            log.info("delivery status of message %s not available: %s", message.id, exc)
            result = None
        asked += 1
        with transaction(praxis.engine) as session:
            _set(session, message.id, (MessageStatus.sent,), polled_at=now())
            if result is not None and result.status in (DeliveryStatus.delivered, DeliveryStatus.failed):
                if apply_result(session, message, result, plugin=plugin, from_states=(MessageStatus.sent,)):
                    changed += 1
    with transaction(praxis.engine) as session:
        waiting = session.exec(select(Message.id).where(
            Message.clinic_id == clinic_id, Message.status == MessageStatus.sent,
            col(Message.sent_at) >= now() - POLL_WINDOW).limit(1)).first()
        if waiting is not None:
            ensure_poll(session, clinic_id, now())
    return {"asked": asked, "changed": changed}


# --- events plugins report -----------------------------------------------------------------------------


def run_event(praxis: Praxis, item: OutboxMessage, plugin: str) -> dict[str, Any]:
    """Plan the rules listening to an event a plugin reported (``ctx.emit_event``, or the older
    ``ctx.enqueue("core.messaging.event", {"event": "lab.result_ready", "patient_id": "...", ...})``). A plugin
    may report ``lab.result_ready`` and its own ``<plugin>.<event>`` events only.

    The messages are planned in a read, written (plugins' placeholders resolved, with the event's data)
    outside any transaction, then inserted in one transaction; their dedupe keys make a second run a no-op.
    A placeholder that cannot be filled for now makes the whole event wait (``RetryableError``)."""
    payload = item.payload
    name = str(payload.get("event") or "")
    if item.clinic_id is None:
        raise PermanentError("an event needs a clinic", code="invalid_event")
    if name != LAB_RESULT_READY and not (plugin != core_handlers.CORE_PLUGIN and name.startswith(plugin + ".")):
        raise PermanentError(f"plugin {plugin} may report {LAB_RESULT_READY!r} or its own '{plugin}.<event>' events, "
                             f"not {name!r}", code="invalid_event")
    patient_id: uuid.UUID | None = None
    try:
        if payload.get("patient_id") is not None:
            patient_id = uuid.UUID(str(payload["patient_id"]))
        appointment_id = int(payload["appointment_id"]) if payload.get("appointment_id") is not None else None
    except (TypeError, ValueError) as exc:
        raise PermanentError("'patient_id' must be a UUID and 'appointment_id' a number", code="invalid_event") from exc
    if patient_id is None and appointment_id is None:
        raise PermanentError("the event needs a 'patient_id' (UUID) or an 'appointment_id'", code="invalid_event")
    data = dict(payload.get("data") or {})
    with Session(reader(praxis.engine)) as session:
        try:
            rows = planner.event_rows(session, item.clinic_id, name, patient_id=patient_id,
                                      event_id=str(payload.get("event_id") or item.id), occurred_at=item.created_at,
                                      data=data, appointment_id=appointment_id)
        except ValueError as exc:
            raise PermanentError(str(exc), code="invalid_event") from exc
        drafts = [SimpleNamespace(**row) for row in rows if row["status"] == MessageStatus.queued]
        sources = render.load(session, drafts, events={d.id: (name, data) for d in drafts})
    texts = render.write(praxis.runtime, sources)
    at = now()
    for row in rows:
        written = texts.get(row["id"])
        if isinstance(written, RenderError):
            wait = placeholders.retry_delay(written, item.attempt)
            if wait is not None:
                raise RetryableError(written.reason, retry_after=wait.total_seconds(), code=written.code)
            row.update(status=MessageStatus.failed, error_code=written.code, reason=written.reason[:1000],
                       finished_at=at)
        elif written is not None:
            row.update(written.values())
    with transaction(praxis.engine) as session:
        made = planner.insert_count(session, rows)
    return {"event": name, "messages": made}


# --- vendor callbacks and replies ---------------------------------------------------------------------


class CallbackRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def handle_callback(praxis: Praxis, plugin: str, clinic_id: int, headers: Mapping[str, str],
                    body: bytes) -> dict[str, int]:
    """Pass a vendor's callback to the provider's ``parse_callback`` (which checks its authenticity) and apply
    the delivery reports and replies it holds."""
    runtime = praxis.runtime
    own = [prov for p, prov in providers(runtime) if p == plugin]
    if not own or not runtime.is_enabled(clinic_id, plugin):
        raise CallbackRefused(404, "not_found", f"no messaging plugin {plugin!r} is enabled in this clinic")
    ctx = runtime.context(plugin, clinic_id)
    first_error: PermanentError | None = None
    parsed: tuple[list[DeliveryReport], list[InboundMessage]] | None = None
    for provider in own:
        try:
            parsed = provider.parse_callback(ctx, headers, body)
            break
        except PermanentError as exc:
            first_error = first_error or exc
    if parsed is None:
        assert first_error is not None
        raise CallbackRefused(403, first_error.code or "callback_refused", str(first_error))
    reports, replies = parsed
    applied = 0
    for report in reports:
        with transaction(praxis.engine) as session:
            if apply_report(session, clinic_id, plugin, report):
                applied += 1
    handled = sum(1 for reply in replies if handle_reply(praxis, clinic_id, plugin, reply) is not None)
    return {"reports": len(reports), "applied": applied, "replies": handled}


_REPORT_FROM = {
    DeliveryStatus.delivered: (MessageStatus.sending, MessageStatus.sent, MessageStatus.unknown),
    DeliveryStatus.failed: (MessageStatus.sending, MessageStatus.sent, MessageStatus.unknown),
    DeliveryStatus.sent: (MessageStatus.sending, MessageStatus.unknown),
    DeliveryStatus.queued: (MessageStatus.sending, MessageStatus.unknown),
}


def apply_report(session: Session, clinic_id: int, plugin: str, report: DeliveryReport) -> bool:
    message = session.exec(select(Message).where(
        Message.clinic_id == clinic_id, Message.provider_plugin == plugin,
        Message.vendor_message_id == report.vendor_message_id)).first()
    if message is None:
        return False
    states = _REPORT_FROM.get(report.status)
    if states is None:
        return False
    result = SendResult(status=report.status, vendor_message_id=report.vendor_message_id,
                        error_code=report.error_code,
                        error_message=f"not delivered (vendor code {report.error_code})" if report.error_code else None)
    return apply_result(session, message, result, plugin=plugin, from_states=states) is not None


def _e164(sender: str, country: str) -> str:
    try:
        number = phonenumbers.parse(sender, (country or "").upper() or None)
        return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    except phonenumbers.NumberParseException:
        return sender.strip()


def handle_reply(praxis: Praxis, clinic_id: int, plugin: str, inbound: InboundMessage) -> InboundReply | None:
    """Record a patient's reply; "1" (or the clinic's confirm words) confirms the appointment of the last
    message sent to that number, "2" (or the cancel words) cancels it. Returns the stored reply."""
    from core.scheduling import appointments
    from core.scheduling.errors import SchedulingError
    from core.scheduling.options import Options
    from plugin_sdk.errors import ValidationFailed

    with transaction(praxis.engine) as session:
        clinic = session.get(Clinic, clinic_id)
        if clinic is None:
            return None
        if inbound.vendor_message_id:
            seen = session.exec(select(InboundReply).where(
                InboundReply.clinic_id == clinic_id, InboundReply.plugin == plugin,
                InboundReply.vendor_message_id == inbound.vendor_message_id)).first()
            if seen is not None:
                return seen
        settings = planner.settings_of(session, clinic_id)
        sender = _e164(inbound.sender, clinic.country)
        since = now() - timedelta(hours=settings.reply_window_hours)  # our clock: vendors' clocks drift
        last = session.exec(select(Message).where(
            Message.clinic_id == clinic_id, Message.address == sender, Message.channel == "sms",
            col(Message.status).in_((MessageStatus.sent, MessageStatus.delivered)),
            col(Message.appointment_id).is_not(None), col(Message.sent_at) >= since,
        ).order_by(col(Message.sent_at).desc())).first()
        text = " ".join(inbound.body.split()).strip().lower()
        confirm = {str(w).strip().lower() for w in settings.confirm_replies}
        cancel = {str(w).strip().lower() for w in settings.cancel_replies}
        action = "confirm" if text in confirm else "cancel" if text in cancel else None
        reply = InboundReply(clinic_id=clinic_id, plugin=plugin, sender=sender[:254], body=inbound.body,
                             received_at=inbound.received_at,
                             vendor_message_id=(inbound.vendor_message_id or None) and inbound.vendor_message_id[:100],
                             message_id=last.id if last else None,
                             appointment_id=last.appointment_id if last else None,
                             patient_id=last.patient_id if last else None)
        if last is None:
            reply.action, reply.detail = "unmatched", "no recent message with an appointment went to this number"
        elif not settings.replies_enabled or action is None:
            reply.action, reply.detail = "ignored", ("replies are not acted on in this clinic"
                                                     if not settings.replies_enabled else "not a known answer")
        else:
            reply.action = "pending"
        session.add(reply)
        session.flush()
        reply_id = reply.id
        options = Options(session, clinic_id)
        confirmed_status = next((o.code for o in options.lists["status"] if o.role == "confirmed" and o.active), None)
        comm = settings.confirmed_communication_status
        comm_ok = comm is not None and options.get("communication_status", comm) is not None
    if reply.action != "pending":
        return reply
    assert reply.appointment_id is not None
    caller = appointments.Caller(Actor.system(f"patient reply by SMS ({plugin})"))
    appointment_id = reply.appointment_id
    try:
        current = appointments.get(praxis, clinic_id, appointment_id)
        if action == "confirm":
            if current.get("status_role") == "booked" and confirmed_status is not None:
                appointments.set_status(praxis, clinic_id, appointment_id, caller, status=confirmed_status)
            if comm_ok and current.get("communication_status") != comm:
                appointments.update(praxis, clinic_id, appointment_id, {"communication_status": comm}, caller)
            outcome, detail = "confirmed", f"the patient confirmed by replying {inbound.body.strip()!r}"
        else:
            appointments.cancel(praxis, clinic_id, appointment_id, caller, reason=settings.cancel_reason,
                                note=f"the patient replied {inbound.body.strip()!r} by SMS")
            outcome, detail = "cancelled", f"the patient cancelled by replying {inbound.body.strip()!r}"
    except (SchedulingError, ValidationFailed) as exc:
        outcome, detail = "failed", f"could not {action} the appointment: {exc}"
    with transaction(praxis.engine) as session:
        stored = session.get(InboundReply, reply_id)
        assert stored is not None
        stored.action, stored.detail = outcome, detail[:1000]
        session.add(stored)
    reply.action, reply.detail = outcome, detail
    return reply


core_handlers.register(planner.SEND_TOPIC, send_message)
core_handlers.register(DAILY_TOPIC, run_daily)
core_handlers.register(POLL_TOPIC, run_poll)
core_handlers.register(EVENT_TOPIC, run_event)
