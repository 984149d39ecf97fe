"""Fixture country plugin: a national id with a check digit, a veto, extra name keys, an event hook."""

from plugin_sdk import Category, FieldError, IdentifierType, PluginManifest, hookimpl

EVENTS: list = []
VETO_CALLS: list = []
manifest = PluginManifest(name="nid", version="1.0.0", title="Test ID", description="Fixture.",
                          category=Category.country, api=">=1.0,<2")


def normalize(value: str) -> str:
    digits = "".join(c for c in value if not c.isspace() and c != "-")
    if not digits.isdigit() or len(digits) != 9:
        raise ValueError("must be 9 digits")
    if sum(int(d) for d in digits[:8]) % 10 != int(digits[8]):
        raise ValueError("the check digit does not match")
    return digits


def mask(value: str) -> str:
    return "*** *** " + value[-3:]


@hookimpl
def praxis_identifier_types():
    return [
        IdentifierType("xx.nid", "National ID", "XX", "patient", normalize, mask),
        IdentifierType("xx.staff", "Staff number", "XX", "staff", str.strip, str),
    ]


@hookimpl
def praxis_validate_patient(ctx, patient, is_new):
    VETO_CALLS.append((is_new, dict(patient)))
    errors = []
    if patient["family_name"] == "Vetoed":
        errors.append(FieldError("family_name", "nid refuses this name", "refused"))
    if "REQUIRE-NID" in patient["tags"] and "xx.nid" not in patient["identifiers"]:
        errors.append(FieldError("identifiers.xx.nid", "required", "required"))
    return errors


@hookimpl
def praxis_name_search_keys(text):
    # A stand-in for chosung/pinyin: the initials of each word, e.g. "Kovács Anna" -> "ka".
    return ["".join(word[0] for word in text.split()) + "#"] if text.strip() else []


@hookimpl
def praxis_on_event(ctx, event):
    EVENTS.append(event.name)
