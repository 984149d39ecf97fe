"""Server-side login sessions, API tokens and CSRF tokens.

* Session: the cookie ``praxis_session`` holds 256 random bits; the database keeps only their SHA-256,
  so a leaked database does not log anyone in. Sessions end after ``IDLE_TIMEOUT`` without a request,
  after ``ABSOLUTE_TIMEOUT`` in any case, at logout, at a password change and when the user is deactivated.
* API token: ``prx_<public id>_<secret>``; the public id finds the row, the secret is compared by its
  SHA-256 (it has 256 bits of entropy, so a slow KDF adds nothing).
* CSRF: ``HMAC(key, session id)``, with the key derived from the master key. It is bound to the
  session, needs no storage and is checked for every cookie-authenticated unsafe request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session, col, select, update

from core.clock import now
from core.crypto import Keyring
from core.models.auth import ApiToken, LoginSession, User

COOKIE_NAME = "praxis_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
IDLE_TIMEOUT = timedelta(hours=2)
ABSOLUTE_TIMEOUT = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # last_seen is written at most this often per session
TOKEN_PREFIX = "prx"


def sha256(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


# --- sessions ----------------------------------------------------------------------------------------


def start_session(session: Session, user: User, *, ip: str = "", user_agent: str = "") -> tuple[str, LoginSession]:
    """Create a session; returns the raw id for the cookie (never stored) and the row."""
    assert user.id is not None
    raw = secrets.token_urlsafe(32)
    at = now()
    row = LoginSession(token_hash=sha256(raw), user_id=user.id, created_at=at, last_seen_at=at,
                       expires_at=at + ABSOLUTE_TIMEOUT, ip=ip[:64], user_agent=user_agent[:300])
    session.add(row)
    session.flush()
    return raw, row


def find_session(session: Session, raw: str) -> LoginSession | None:
    """The live session behind a cookie value, or None if unknown, revoked, idle too long or expired."""
    if not raw or len(raw) > 200:
        return None
    row = session.exec(select(LoginSession).where(LoginSession.token_hash == sha256(raw))).first()
    if row is None or row.revoked_at is not None:
        return None
    at = now()
    if at >= row.expires_at or at >= row.last_seen_at + IDLE_TIMEOUT:
        return None
    return row


def touch_session(session: Session, row: LoginSession) -> bool:
    """Record activity (at most once per ``TOUCH_EVERY``). Returns True if it wrote."""
    at = now()
    if at - row.last_seen_at < TOUCH_EVERY:
        return False
    session.exec(update(LoginSession).where(col(LoginSession.id) == row.id).values(last_seen_at=at))
    row.last_seen_at = at
    return True


def revoke_session(session: Session, session_id: int) -> None:
    session.exec(update(LoginSession).where(col(LoginSession.id) == session_id,
                                            col(LoginSession.revoked_at).is_(None)).values(revoked_at=now()))


def revoke_sessions(session: Session, user_id: int, *, except_id: int | None = None) -> int:
    """End every live session of a user (except one, e.g. the one changing the password)."""
    rows = session.exec(select(LoginSession).where(LoginSession.user_id == user_id,
                                                   col(LoginSession.revoked_at).is_(None))).all()
    count = 0
    for row in rows:
        if row.id == except_id:
            continue
        row.revoked_at = now()
        session.add(row)
        count += 1
    session.flush()
    return count


# --- CSRF --------------------------------------------------------------------------------------------


def _csrf_keys(keyring: Keyring) -> list[bytes]:
    return [k.derive("praxis/csrf/v1") for k in keyring.keys]


def csrf_token(keyring: Keyring, raw_session: str) -> str:
    """The CSRF token of a session (the current master key's)."""
    return hmac.new(_csrf_keys(keyring)[0], raw_session.encode(), hashlib.sha256).hexdigest()


def csrf_valid(keyring: Keyring, raw_session: str, submitted: str | None) -> bool:
    """Whether ``submitted`` is this session's token under any configured master key (survives rotation)."""
    if not submitted or not raw_session:
        return False
    return any(
        hmac.compare_digest(hmac.new(key, raw_session.encode(), hashlib.sha256).hexdigest(), submitted)
        for key in _csrf_keys(keyring)
    )


# --- API tokens --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewToken:
    row: ApiToken
    secret: str  # the whole token; shown once


def create_token(session: Session, user_id: int, name: str, *, scopes: list[str] | None = None,
                 expires_at: datetime | None = None) -> NewToken:
    public_id = secrets.token_hex(6)
    secret = secrets.token_urlsafe(32)
    row = ApiToken(public_id=public_id, secret_hash=sha256(secret), user_id=user_id, name=name,
                   scopes=sorted(set(scopes)) if scopes is not None else None, expires_at=expires_at)
    session.add(row)
    session.flush()
    return NewToken(row, f"{TOKEN_PREFIX}_{public_id}_{secret}")


def find_token(session: Session, token: str) -> ApiToken | None:
    """The live token row for a presented token, or None."""
    parts = token.split("_", 2)
    if len(parts) != 3 or parts[0] != TOKEN_PREFIX or not parts[1] or not parts[2] or len(token) > 200:
        return None
    row = session.exec(select(ApiToken).where(ApiToken.public_id == parts[1])).first()
    if row is None or not hmac.compare_digest(row.secret_hash, sha256(parts[2])):
        return None
    if row.revoked_at is not None or (row.expires_at is not None and now() >= row.expires_at):
        return None
    return row


def touch_token(session: Session, row: ApiToken) -> bool:
    at = now()
    if row.last_used_at is not None and at - row.last_used_at < TOUCH_EVERY:
        return False
    session.exec(update(ApiToken).where(col(ApiToken.id) == row.id).values(last_used_at=at))
    row.last_used_at = at
    return True


def revoke_tokens(session: Session, user_id: int) -> int:
    rows = session.exec(select(ApiToken).where(ApiToken.user_id == user_id, col(ApiToken.revoked_at).is_(None))).all()
    for row in rows:
        row.revoked_at = now()
        session.add(row)
    session.flush()
    return len(rows)
