"""A patient-portal plugin for the messaging tests: placeholders (``praxis_placeholders``) and events it reports
(``praxis_event_types``, ``ctx.emit_event``). ``BEHAVIOUR`` steers the resolvers; ``VIEWS`` records what they
were given."""

from plugin_sdk import N_, Category, PluginManifest, RetryableError, hookimpl
from plugin_sdk.contributions import Placeholder
from plugin_sdk.events import EventType

BEHAVIOUR: dict[str, object] = {}
VIEWS: list = []

manifest = PluginManifest(name="portal", version="1.0.0", title="Patient Portal", description="Portal codes.",
                          category=Category.other, api=">=1.0,<2")


def _code(ctx, message):
    VIEWS.append(message)
    mode = BEHAVIOUR.get("code")
    if mode == "raise":
        raise RuntimeError("portal database unreachable")
    if mode == "retry":
        raise RetryableError("portal busy", retry_after=60)
    if mode == "none":
        return None
    if mode == "raise_for" and message.recipient_name == BEHAVIOUR.get("who"):
        raise RuntimeError("no code for this patient")
    return f"K-{(message.patient_id or 'new')[:4]}"


def _visit_link(ctx, message):
    return f"https://portal.example/v/{message.appointment_id}"


def _form(ctx, message):
    return str(message.data.get("form", ""))


@hookimpl
def praxis_placeholders():
    return [
        Placeholder("portal_code", N_("The patient's portal login code"), _code, sample="K-1234"),
        Placeholder("portal_visit_link", N_("The visit's page in the portal"), _visit_link, type="url",
                    needs_appointment=True),
        Placeholder("portal_form", N_("The form the patient signed"), _form),
        Placeholder("date", N_("Clashes with the core's {date}"), _form, type="date"),
        "not a placeholder",
    ]


@hookimpl
def praxis_event_types():
    return [
        EventType("portal.form_signed", N_("Form signed in the portal"), concerns="patient"),
        EventType("portal.checked_in", N_("Checked in online"), concerns="appointment"),
        EventType("other.stolen", N_("Someone else's event")),
    ]
