"""The MLLP listener the lab pushes ORU^R01 results to, one per clinic (its ``listener_port``).

Started by the plugin's periodic job ``mllp_listener`` (every 30 seconds), not by ``praxis_startup``: the job runs
in the worker with the clinic's context and settings, which a start-up hook does not have, and only where the
plugin is enabled. Each run makes sure this process listens on the configured address (restarting it when the
settings changed). If another process holds the port, the run leaves it there; if that process dies, the next
run in a surviving worker takes the port over.

Each message is answered after it was dealt with:

* ``AA``: stored whole in ``lab_hl7_inbox`` (one transaction, together with the ``core.labs.poll`` item that makes
  the core fetch it), or a resend of a message stored before;
* ``AR``: not an ORU^R01, not HL7 v2, unreadable, or addressed to another application/facility (MSH-5/6);
* ``AE``: segments out of order, no OBR, a required field missing, an unknown result status, or a placer order
  number the lab never acknowledged for this clinic; ``AE`` with 207 when storing failed (the lab tries again).

ERR carries the HL7 error code (table 0357), the segment at fault and the reason. Nothing is stored unless AA.
"""

from __future__ import annotations

import errno
import logging
import threading
import uuid
from typing import Any

import hl7

from plugin_sdk import PluginContext
from plugin_sdk.providers import LAB_POLL_TOPIC
from praxis_lab_hl7 import store
from praxis_lab_hl7.connector import zone_of
from praxis_lab_hl7.messages import Hl7Reject, build_ack, control_id, parse_results
from praxis_lab_hl7.mllp import MllpServer
from praxis_lab_hl7.settings import Hl7Settings

log = logging.getLogger(__name__)


class ResultListener:
    def __init__(self, ctx: PluginContext, host: str, port: int) -> None:
        self.ctx = ctx
        self.address = (host, port)
        self._server = MllpServer(host, port, self.handle)

    def start(self) -> ResultListener:
        self._server.start()
        return self

    def stop(self) -> None:
        self._server.stop()

    def handle(self, raw: str) -> str:
        ctx = self.ctx
        settings = ctx.settings
        assert isinstance(settings, Hl7Settings)
        ours = (settings.sending_application, settings.sending_facility)
        ack_control = control_id(f"ack:{uuid.uuid4()}")
        incoming: Any = None
        try:
            incoming = hl7.parse(raw.replace("\n", "\r").strip("\r"))
        except Exception:  # noqa: BLE001 - answered below by parse_results' own reason
            incoming = None
        try:
            parsed = parse_results(raw, zone_of(ctx))
            if tuple(x.upper() for x in parsed.receiving) != tuple(x.upper() for x in ours):
                raise Hl7Reject("AR", "103", f"addressed to {parsed.receiving[0]}/{parsed.receiving[1]} (MSH-5/6), "
                                             f"this is {ours[0]}/{ours[1]}", "MSH^5")
            with ctx.session() as session:
                for group in parsed.groups:
                    if not store.known_order(session, ctx.clinic.id, group.placer_order_number,
                                             group.filler_order_number):
                        raise Hl7Reject("AE", "204", f"unknown order: placer {group.placer_order_number!r}, filler "
                                                     f"{group.filler_order_number!r} was never acknowledged for this "
                                                     f"clinic", "ORC^2")
                groups = [{"placer_order_number": g.placer_order_number,
                           "filler_order_number": g.filler_order_number, "results": g.results}
                          for g in parsed.groups]
                row = store.add_message(session, ctx.clinic.id, parsed.control_id, "listener", raw, groups,
                                        ctx.now())
                if row is not None:
                    ctx.enqueue(LAB_POLL_TOPIC, {}, dedupe_key=f"inbox:{ctx.clinic.id}:{row}", session=session)
        except Hl7Reject as reject:
            log.info("clinic %s: lab message answered %s: %s", ctx.clinic.id, reject.ack, reject.reason)
            return build_ack(incoming, reject.ack, sending=ours, control=ack_control, at=ctx.now(), reject=reject)
        except Exception as exc:
            log.exception("clinic %s: a lab message could not be stored", ctx.clinic.id)
            reject = Hl7Reject("AE", "207", f"the clinic could not store the message ({type(exc).__name__}); "
                                            f"send it again later")
            return build_ack(incoming, "AE", sending=ours, control=ack_control, at=ctx.now(), reject=reject)
        return build_ack(incoming, "AA", sending=ours, control=ack_control, at=ctx.now())


class Listeners:
    """The listeners running in this process, per clinic."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._running: dict[int, ResultListener] = {}

    def ensure(self, ctx: PluginContext) -> str:
        """Listen where the clinic's settings say (or stop listening). Returns what happened, for the log."""
        settings = ctx.settings
        assert isinstance(settings, Hl7Settings)
        clinic_id = ctx.clinic.id
        wanted = (settings.listener_host, settings.listener_port) if settings.listener_port else None
        with self._lock:
            current = self._running.get(clinic_id)
            if current is not None and current.address == wanted:
                current.ctx = ctx  # fresh settings (codes, zone) for the next messages
                return "running"
            if current is not None:
                current.stop()
                del self._running[clinic_id]
            if wanted is None:
                return "off"
            try:
                listener = ResultListener(ctx, *wanted).start()
            except OSError as exc:
                if exc.errno == errno.EADDRINUSE:
                    return "in use"  # most likely another worker process listens there already
                raise
            self._running[clinic_id] = listener
            return "started"

    def get(self, clinic_id: int) -> ResultListener | None:
        with self._lock:
            return self._running.get(clinic_id)

    def stop(self, clinic_id: int) -> None:
        with self._lock:
            listener = self._running.pop(clinic_id, None)
        if listener is not None:
            listener.stop()

    def stop_all(self) -> None:
        with self._lock:
            running, self._running = list(self._running.values()), {}
        for listener in running:
            listener.stop()


LISTENERS = Listeners()
