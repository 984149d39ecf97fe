"""Events messaging rules can listen to: the core's (``lab.result_ready``) and those plugins declare
(``praxis_event_types``), and how a plugin reports one (``ctx.emit_event``).

Reporting writes, in the caller's transaction, a domain event for the plugins enabled in the clinic
(``praxis_on_event``) and a ``core.messaging.event`` outbox item, whose handler
(``core.messaging.delivery.run_event``) plans the messages of the rules listening to the event. The item
carries the reporting plugin's name: a plugin disabled before it is handled has its events skipped.

The older path, ``ctx.enqueue("core.messaging.event", {"event": ..., "patient_id": ...})``, still works
for ``lab.result_ready`` and ``<plugin>.<event>`` names, declared or not.
"""

from __future__ import annotations

import json
import logging
import uuid
import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlmodel import Session, select

from core import events as domain_events
from core.outbox.queue import enqueue
from plugin_sdk.events import EventType

if TYPE_CHECKING:
    from core.plugins.runtime import PluginRuntime

log = logging.getLogger(__name__)

EVENT_TOPIC = "core.messaging.event"
LAB_RESULT_READY = "lab.result_ready"
CORE = "core"


def N_(message: str) -> str:
    return message


#: Events the core itself reports (any plugin may report these too).
CORE_EVENTS = {
    LAB_RESULT_READY: EventType(name=LAB_RESULT_READY, title=N_("Lab result ready"), concerns="patient",
                                description=N_("A lab order's results are final, or a final result was corrected")),
}


@dataclass
class Declared:
    by_name: dict[str, tuple[str, EventType]] = field(default_factory=dict)  # name -> (plugin or "core", type)
    refused: list[str] = field(default_factory=list)


_declared: weakref.WeakKeyDictionary[Any, Declared] = weakref.WeakKeyDictionary()


def declared(runtime: PluginRuntime) -> Declared:
    """Every event kind: the core's and those the available plugins declare (collected once per runtime)."""
    found = _declared.get(runtime)
    if found is None:
        found = Declared({name: (CORE, kind) for name, kind in CORE_EVENTS.items()})
        for answer in runtime.collect("praxis_event_types"):
            for kind in answer.value or []:
                problem = None
                if not isinstance(kind, EventType):
                    problem = f"returned {kind!r}, not a plugin_sdk.events.EventType"
                elif not kind.name.startswith(answer.plugin + "."):
                    problem = f"event {kind.name!r} must be named '{answer.plugin}.<event>'"
                elif kind.name in found.by_name:
                    problem = f"event {kind.name!r} is declared twice"
                if problem is not None:
                    message = f"plugin {answer.plugin}: {problem}; ignored"
                    log.error("%s", message)
                    found.refused.append(message)
                    continue
                found.by_name[kind.name] = (answer.plugin, kind)
        _declared[runtime] = found
    return found


def for_clinic(runtime: PluginRuntime, clinic_id: int) -> list[dict[str, Any]]:
    """The event kinds a rule of this clinic may listen to: the core's and those of the plugins enabled there.
    ``title`` and ``description`` are msgids (of the plugin's catalog, domain ``praxis_<plugin>``, for a
    plugin's events)."""
    enabled = set(runtime.enabled(clinic_id, include_open_circuits=True))
    out = []
    for name, (plugin, kind) in sorted(declared(runtime).by_name.items()):
        if plugin == CORE or plugin in enabled:
            out.append({"name": name, "title": kind.title, "description": kind.description,
                        "concerns": kind.concerns, "plugin": None if plugin == CORE else plugin,
                        "plugin_title": None if plugin == CORE else runtime.title(plugin)})
    return out


def problem(runtime: PluginRuntime, clinic_id: int, name: str) -> tuple[str, str] | None:
    """(code, reason) if a rule of this clinic may not listen to ``name``; None if it may."""
    found = declared(runtime).by_name.get(name)
    if found is None:
        return "unknown_event", (f"no installed plugin declares the event {name!r}; use "
                                 f"{LAB_RESULT_READY!r} or an event a plugin declares")
    plugin, _kind = found
    if plugin != CORE and not runtime.is_enabled(clinic_id, plugin):
        return "event_unavailable", (f"the event {name!r} comes from the plugin {runtime.title(plugin)} "
                                     f"({plugin}), which is not enabled in this clinic")
    return None


def concerns_appointment(runtime: PluginRuntime, name: str) -> bool:
    found = declared(runtime).by_name.get(name)
    return found is not None and found[1].concerns == "appointment"


def emit(session: Session, runtime: PluginRuntime, plugin: str, clinic_id: int, name: str, *,
         patient_id: str | uuid.UUID | None = None, appointment_id: int | None = None,
         data: dict[str, Any] | None = None) -> uuid.UUID:
    """Report event ``name`` of ``plugin`` in ``session``'s transaction (see the module's docstring)."""
    from core.models.appointment import Appointment
    from core.models.patient import Patient

    found = declared(runtime).by_name.get(name)
    if found is None or (found[0] != plugin and found[0] != CORE):
        raise ValueError(f"plugin {plugin} does not declare the event {name!r} (praxis_event_types)")
    kind = found[1]
    data = dict(data or {})
    try:
        json.dumps(data)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"data: must be JSON-serialisable ({exc})") from exc
    patient: uuid.UUID | None = None
    if patient_id is not None:
        try:
            patient = uuid.UUID(str(patient_id))
        except ValueError as exc:
            raise ValueError(f"patient_id {patient_id!r} is not a patient id") from exc
    if appointment_id is not None:
        row = session.exec(select(Appointment.clinic_id, Appointment.patient_id)
                           .where(Appointment.id == appointment_id)).first()
        if row is None or row[0] != clinic_id:
            raise ValueError(f"appointment {appointment_id} is not an appointment of clinic {clinic_id}")
        if patient is not None and row[1] is not None and row[1] != patient:
            raise ValueError(f"appointment {appointment_id} is not patient {patient}'s")
        patient = patient or row[1]
    elif kind.concerns == "appointment":
        raise ValueError(f"the event {name!r} concerns an appointment: give appointment_id")
    if patient is None:
        if kind.concerns == "patient":
            raise ValueError(f"the event {name!r} concerns a patient: give patient_id")
    else:
        owner = session.exec(select(Patient.clinic_id).where(Patient.id == patient)).first()
        if owner != clinic_id:
            raise ValueError(f"patient {patient} is not a patient of clinic {clinic_id}")
    subject_type, subject_id = ("appointment", appointment_id) if appointment_id is not None else \
        ("patient", str(patient))
    event = domain_events.emit(session, runtime, name, clinic_id=clinic_id, subject_type=subject_type,
                               subject_id=str(subject_id),
                               data={**data, "patient_id": str(patient) if patient else None,
                                     "appointment_id": appointment_id})
    enqueue(session, plugin=plugin, topic=EVENT_TOPIC, clinic_id=clinic_id,
            payload={"event": name, "patient_id": str(patient) if patient else None, "appointment_id": appointment_id,
                     "event_id": str(event.id), "data": data},
            dedupe_key=f"{plugin}:{EVENT_TOPIC}:{event.id}")
    return event.id
