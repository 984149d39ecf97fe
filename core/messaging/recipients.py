"""Who receives a patient's message, on which channel, at which address.

* The patient's preferred channel first, the other one as the fallback (a rule may insist on one channel;
  a patient whose preference is ``none`` gets no automatic messages).
* Minors (under 18 on the clinic's date) are reached through their guardians; the patient only when no
  guardian has a usable address.
* A channel the patient opted out of is never used (for the guardians either: the opt-out is the family's).
* Phone numbers must be valid numbers (``phonenumbers``) that can take an SMS; a landline or an invalid
  number is a permanent failure with the reason, never handed to a vendor.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from functools import lru_cache

import phonenumbers
from email_validator import EmailNotValidError, validate_email

CHANNELS = ("sms", "email")
ADULT_AGE = 18


@dataclass(frozen=True)
class Contact:
    """A person who can be written to, with their addresses (phones as stored: E.164)."""

    kind: str  # "patient" or "guardian"
    key: str  # part of the message's dedupe key: "p<patient id>", "guardian:<id>" or "phone:<e164>"
    name: str
    phones: tuple[tuple[str, str], ...]  # (e164, kind)
    emails: tuple[str, ...]
    guardian_id: uuid.UUID | None = None


@dataclass(frozen=True)
class Recipient:
    kind: str
    key: str
    name: str
    channel: str
    address: str
    guardian_id: uuid.UUID | None = None
    problem: str | None = None  # set when no message can go out: the readable reason
    problem_code: str | None = None
    opted_out: bool = False


def age_on(birth: date | None, day: date) -> int | None:
    if birth is None:
        return None
    return day.year - birth.year - ((day.month, day.day) < (birth.month, birth.day))


def channel_order(rule_channel: str, preferred: str | None) -> list[str]:
    if rule_channel in CHANNELS:
        return [rule_channel]
    first = preferred if preferred in CHANNELS else "sms"
    return [first, *(c for c in CHANNELS if c != first)]


@lru_cache(maxsize=65536)
def check_phone(e164: str, country: str) -> tuple[str | None, str | None]:
    """(normalised number, None) or (None, readable reason) for an SMS address."""
    try:
        number = phonenumbers.parse(e164, (country or "").upper() or None)
    except phonenumbers.NumberParseException as exc:
        return None, f"the phone number {e164!r} cannot be read: {exc}"
    kind = phonenumbers.number_type(number)  # UNKNOWN exactly when is_valid_number says no (one look-up, not two)
    if kind == phonenumbers.PhoneNumberType.UNKNOWN:
        region = phonenumbers.region_code_for_number(number) or country or "?"
        return None, f"the phone number {e164} is not a valid number ({region})"
    if kind in (phonenumbers.PhoneNumberType.FIXED_LINE, phonenumbers.PhoneNumberType.TOLL_FREE,
                phonenumbers.PhoneNumberType.PREMIUM_RATE, phonenumbers.PhoneNumberType.SHARED_COST):
        return None, f"the phone number {e164} is a landline or service number and cannot receive SMS"
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164), None


def check_email(address: str) -> tuple[str | None, str | None]:
    try:
        return validate_email(address, check_deliverability=False).normalized, None
    except EmailNotValidError as exc:
        return None, f"the e-mail address {address!r} is not valid: {exc}"


def _address(contact: Contact, channel: str, country: str) -> tuple[str | None, str | None]:
    """The best address of ``contact`` on ``channel``: (address, None), (None, problem) or (None, None) if none."""
    if channel == "email":
        if not contact.emails:
            return None, None
        return check_email(contact.emails[0])
    if not contact.phones:
        return None, None
    ordered = sorted(contact.phones, key=lambda p: p[1] != "mobile")  # mobiles first, stable otherwise
    first_problem = None
    for e164, _kind in ordered:
        number, problem = check_phone(e164, country)
        if number is not None:
            return number, None
        first_problem = first_problem or problem
    return None, first_problem


def pick(contact: Contact, order: Sequence[str], opted_out: Iterable[str], country: str) -> Recipient:
    """The first channel in ``order`` that the patient did not opt out of and the contact has an address for."""
    out = set(opted_out)
    problem: tuple[str, str] | None = None
    for channel in order:
        if channel in out:
            continue
        address, issue = _address(contact, channel, country)
        if address is not None:
            return Recipient(contact.kind, contact.key, contact.name, channel, address, contact.guardian_id)
        if issue is not None and problem is None:
            problem = (channel, issue)
    if problem is not None:
        channel, issue = problem
        return Recipient(contact.kind, contact.key, contact.name, channel, "", contact.guardian_id,
                         problem=issue, problem_code="invalid_address")
    if order and all(c in out for c in order):
        return Recipient(contact.kind, contact.key, contact.name, order[0], "", contact.guardian_id,
                         problem=f"the patient opted out of {' and '.join(order)}", problem_code="opted_out",
                         opted_out=True)
    channels = " or ".join("phone" if c == "sms" else "e-mail address" for c in order if c not in out)
    return Recipient(contact.kind, contact.key, contact.name, order[0] if order else "sms", "", contact.guardian_id,
                     problem=f"no {channels} on record", problem_code="no_address")


def choose(patient: Contact, guardians: Sequence[Contact], *, birth_date: date | None, today: date,
           rule_channel: str, preferred: str | None, opted_out: Iterable[str], country: str) -> list[Recipient]:
    """The recipients of one message for one patient (several for a minor with several guardians)."""
    if rule_channel == "patient" and preferred == "none":
        return []
    order = channel_order(rule_channel, preferred)
    out = list(opted_out)
    age = age_on(birth_date, today)
    if age is not None and age < ADULT_AGE and guardians:
        reached = [pick(g, order, out, country) for g in guardians]
        usable = [r for r in reached if r.problem is None]
        if usable:
            return usable
        if any(r.opted_out for r in reached):
            return [reached[0]]
    return [pick(patient, order, out, country)]
