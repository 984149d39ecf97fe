"""How NHN Cloud measures a message: bytes in EUC-KR, as Korean carriers count them.

Korean carriers and NHN say "EUC-KR" and mean its Microsoft extension CP949 (UHC): every modern Hangul syllable
is 2 bytes (plain EUC-KR has only 2,350 of the 11,172 and no byte count for the rest), ASCII is 1 byte.
Characters that CP949 cannot encode (emoji, most accented Latin letters) cannot be sent at all.
"""

from __future__ import annotations

from dataclasses import dataclass

from plugin_sdk.errors import PermanentError

CODEC = "cp949"
SMS_MAX_BYTES = 90
LMS_MAX_BYTES = 2000
TITLE_MAX_BYTES = 40


@dataclass(frozen=True)
class Measured:
    kind: str  # "SMS" or "LMS"
    bytes: int


def byte_length(text: str) -> int:
    return len(text.encode(CODEC))


def unsupported(text: str) -> list[str]:
    """The distinct characters of ``text`` that cannot be sent, in order of appearance."""
    found: list[str] = []
    for ch in text:
        try:
            ch.encode(CODEC)
        except UnicodeEncodeError:
            if ch not in found:
                found.append(ch)
    return found


def measure(body: str) -> Measured:
    """SMS up to 90 bytes, LMS up to 2000; anything else is refused before it is sent."""
    bad = unsupported(body)
    if bad:
        shown = ", ".join(f"{ch!r} (U+{ord(ch):04X})" for ch in bad[:5])
        raise PermanentError(f"the message contains characters Korean SMS cannot carry (not in EUC-KR): {shown}",
                             code="unsupported_character")
    size = byte_length(body)
    if size == 0 or not body.strip():
        raise PermanentError("the message is empty", code="empty_body")
    if size > LMS_MAX_BYTES:
        raise PermanentError(f"the message is {size} bytes in EUC-KR; a long message (LMS) holds at most "
                             f"{LMS_MAX_BYTES}", code="too_long")
    return Measured("SMS" if size <= SMS_MAX_BYTES else "LMS", size)


def clip(text: str, limit: int) -> str:
    """The longest prefix of ``text`` (unsupported characters dropped) that fits in ``limit`` bytes."""
    out, used = [], 0
    for ch in text:
        try:
            size = len(ch.encode(CODEC))
        except UnicodeEncodeError:
            continue
        if used + size > limit:
            break
        out.append(ch)
        used += size
    return "".join(out)
