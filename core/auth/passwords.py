"""Password hashing (argon2id via pwdlib), the password policy, and login throttling.

pwdlib was chosen over passlib (broken with bcrypt 5) and bare argon2-cffi because ``verify_and_update``
rehashes old hashes transparently when the parameters are raised.

Throttling keeps its counters in the database (``core_login_attempt``) so it holds across processes:
5 failed logins for one account within 15 minutes lock that account for 15 minutes from the last
failure; 20 failures from one IP address within 15 minutes block that address for the same time
(a clinic's staff often share one address, hence the higher limit).
"""

from __future__ import annotations

import secrets
import unicodedata
from dataclasses import dataclass
from datetime import datetime, timedelta

from pwdlib import PasswordHash
from sqlalchemy import func
from sqlmodel import Session, col, select

from core.clock import now
from core.models.auth import LoginAttempt, PasswordHistory, User
from plugin_sdk.errors import FieldError

MIN_LENGTH = 10
MAX_LENGTH = 1024  # argon2 hashes anything, but there is no reason to spend CPU on megabytes
HISTORY = 5
MAX_FAILURES_PER_LOGIN = 5
MAX_FAILURES_PER_IP = 20
LOCK_WINDOW = timedelta(minutes=15)
FAILURE_REASONS = ("bad_password", "unknown_user", "inactive")

_hasher = PasswordHash.recommended()
_dummy_hash: str | None = None


def configure_hasher(hasher: PasswordHash) -> None:
    """Replace the hasher (for instance with cheaper argon2 parameters in a test suite)."""
    global _hasher, _dummy_hash
    _hasher, _dummy_hash = hasher, None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password: str, password_hash: str) -> tuple[bool, str | None]:
    """(matches, new hash if the stored one should be upgraded)."""
    if not password_hash:
        burn_time(password)
        return False, None
    try:
        return _hasher.verify_and_update(password, password_hash)
    except Exception:  # an unrecognised or corrupt hash never matches
        return False, None


def burn_time(password: str) -> None:
    """Spend as long as a real check, so an unknown login cannot be told from a wrong password."""
    global _dummy_hash
    if _dummy_hash is None:
        _dummy_hash = _hasher.hash(secrets.token_urlsafe(16))
    _hasher.verify(password, _dummy_hash)


def normalize_login(login: str) -> str:
    return unicodedata.normalize("NFKC", login).strip().casefold()


def policy_errors(password: str, *, login: str, field: str = "password") -> list[FieldError]:
    """Problems with a new password that need no database: length and similarity to the login."""
    errors = []
    if len(password) < MIN_LENGTH:
        errors.append(FieldError(field, f"must be at least {MIN_LENGTH} characters long", "too_short"))
    elif len(password) > MAX_LENGTH:
        errors.append(FieldError(field, f"must be at most {MAX_LENGTH} characters long", "too_long"))
    if password.strip() != password or not password.strip():
        errors.append(FieldError(field, "must not start or end with spaces", "whitespace"))
    if login and normalize_login(password) == normalize_login(login):
        errors.append(FieldError(field, "must not be the login name", "same_as_login"))
    return errors


def reused(session: Session, user_id: int, password: str) -> bool:
    """Whether ``password`` is one of the user's last ``HISTORY`` passwords."""
    recent = session.exec(
        select(PasswordHistory.password_hash).where(PasswordHistory.user_id == user_id)
        .order_by(col(PasswordHistory.created_at).desc(), col(PasswordHistory.id).desc()).limit(HISTORY)
    ).all()
    return any(verify_password(password, h)[0] for h in recent)


def set_password(session: Session, user: User, password: str, *, must_change: bool = False,
                 field: str = "password") -> list[FieldError]:
    """Check the policy and, if it passes, store the new hash and remember it. Returns the problems."""
    errors = policy_errors(password, login=user.login, field=field)
    if not errors and user.id is not None and reused(session, user.id, password):
        errors.append(FieldError(field, f"must differ from your last {HISTORY} passwords", "reused"))
    if errors:
        return errors
    user.password_hash = hash_password(password)
    user.must_change_password = must_change
    user.password_changed_at = now()
    session.add(user)
    session.flush()
    assert user.id is not None
    session.add(PasswordHistory(user_id=user.id, password_hash=user.password_hash))
    session.flush()
    return []


# --- throttling --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Lock:
    scope: str  # "login" or "ip"
    until: datetime

    def retry_after(self, at: datetime) -> int:
        return max(1, int((self.until - at).total_seconds()) + 1)


def _failures(session: Session, column: object, value: str, since: datetime,
              reset_on_success: bool) -> tuple[int, datetime | None]:
    """Failures on ``column == value`` after ``since`` (and after the last success there, if asked)."""
    start = since
    if reset_on_success:
        last_ok = session.exec(
            select(func.max(LoginAttempt.at)).where(column == value, col(LoginAttempt.success).is_(True),
                                                    LoginAttempt.at > since)
        ).one()
        start = max(since, last_ok) if last_ok is not None else since
    count, latest = session.exec(
        select(func.count(), func.max(LoginAttempt.at)).where(
            column == value, col(LoginAttempt.success).is_(False),
            col(LoginAttempt.reason).in_(FAILURE_REASONS), LoginAttempt.at > start,
        )
    ).one()
    return int(count or 0), latest


def lock_for(session: Session, login: str, ip: str, at: datetime | None = None) -> Lock | None:
    """The lock in force for this login or this address, if any."""
    at = at or now()
    since = at - LOCK_WINDOW
    # A success resets an account's count; it does not reset an address's, or one valid account
    # would let its owner keep guessing other people's passwords from the same address.
    count, latest = _failures(session, LoginAttempt.login, normalize_login(login), since, True)
    if count >= MAX_FAILURES_PER_LOGIN and latest is not None:
        return Lock("login", latest + LOCK_WINDOW)
    if ip:
        count, latest = _failures(session, LoginAttempt.ip, ip, since, False)
        if count >= MAX_FAILURES_PER_IP and latest is not None:
            return Lock("ip", latest + LOCK_WINDOW)
    return None


def record_attempt(session: Session, *, login: str, user_id: int | None, ip: str, user_agent: str,
                   success: bool, reason: str) -> LoginAttempt:
    attempt = LoginAttempt(login=normalize_login(login)[:100], user_id=user_id, ip=ip[:64],
                           user_agent=user_agent[:300], success=success, reason=reason)
    session.add(attempt)
    session.flush()
    return attempt


def unlock(session: Session, login: str) -> int:
    """Forget the recent failures of a login (an administrator's unlock). Returns how many were cleared."""
    rows = session.exec(
        select(LoginAttempt).where(LoginAttempt.login == normalize_login(login),
                                   col(LoginAttempt.success).is_(False),
                                   col(LoginAttempt.reason).in_(FAILURE_REASONS),
                                   LoginAttempt.at > now() - LOCK_WINDOW)
    ).all()
    for row in rows:
        row.reason = "cleared"
        session.add(row)
    session.flush()
    return len(rows)
