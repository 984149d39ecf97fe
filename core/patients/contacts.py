"""Phone numbers (E.164 via ``phonenumbers``) and e-mail addresses (``email-validator``)."""

from __future__ import annotations

import phonenumbers
from email_validator import EmailNotValidError, validate_email


def parse_phone(number: str, region: str) -> str:
    """E.164 form of ``number``; a national number is read in ``region`` (ISO 3166 alpha-2).

    Raises ``ValueError`` with a readable reason.
    """
    try:
        parsed = phonenumbers.parse(number, region.upper() if region else None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from exc
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError(f"{number!r} is not a valid phone number"
                         + (f" in {region.upper()}" if region and not number.strip().startswith("+") else ""))
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def searchable_digits(e164: str) -> str:
    """International and national digits, space-separated, so '3012' and '0630 12' runs both match."""
    parsed = phonenumbers.parse(e164, None)
    national = "".join(c for c in phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.NATIONAL)
                       if c.isdigit())
    international = e164.lstrip("+")
    return international if national == international else f"{international} {national}"


def normalise_email(address: str) -> str:
    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc
