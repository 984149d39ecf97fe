"""Checking a login and password, with throttling, login history and session start.

The password is verified outside any transaction (argon2 takes ~0.1 s and SQLite writers would wait on
it); the attempt, the session and the audit entry are then written in one transaction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlmodel import select

from core import audit
from core.auth import passwords, sessions
from core.auth.errors import ApiError
from core.clock import now
from core.db import transaction
from core.models.auth import LoginSession, User

if TYPE_CHECKING:
    from core.app_context import Praxis

WRONG = "wrong login or password"


@dataclass(frozen=True)
class LoginResult:
    user: User
    raw_session: str
    session: LoginSession
    csrf_token: str


def _locked_error(lock: passwords.Lock) -> ApiError:
    retry = lock.retry_after(now())
    what = "this account" if lock.scope == "login" else "this address"
    return ApiError(429, "locked", f"too many failed logins for {what}; try again in {max(1, retry // 60)} minute(s)",
                    headers={"Retry-After": str(retry)}, retry_after=retry)


def authenticate(praxis: Praxis, login: str, password: str, *, ip: str = "", user_agent: str = "") -> LoginResult:
    """Log in or raise ``ApiError``: 401 wrong credentials, 403 deactivated, 429 locked out."""
    normal = passwords.normalize_login(login)
    with transaction(praxis.engine) as session:
        lock = passwords.lock_for(session, normal, ip)
        if lock is not None:
            passwords.record_attempt(session, login=normal, user_id=None, ip=ip, user_agent=user_agent,
                                     success=False, reason="locked")
        user = session.exec(select(User).where(User.login == normal)).first()
        stored = user.password_hash if user else ""
    if lock is not None:
        raise _locked_error(lock)

    if user is None:
        passwords.burn_time(password)
        ok, new_hash = False, None
    else:
        ok, new_hash = passwords.verify_password(password, stored)

    with transaction(praxis.engine) as session:
        if not ok or user is None or not user.active:
            reason = "unknown_user" if user is None else ("bad_password" if not ok else "inactive")
            passwords.record_attempt(session, login=normal, user_id=user.id if user else None, ip=ip,
                                     user_agent=user_agent, success=False, reason=reason)
            lock = passwords.lock_for(session, normal, ip)
            if lock is not None:
                audit.record(session, audit.Actor.system("login"), "auth.locked",
                             target=f"user:{user.id}" if user else f"login:{normal}",
                             data={"scope": lock.scope, "ip": ip, "until": lock.until.isoformat()})
            failed = True
        else:
            failed = False
            fresh = session.get(User, user.id)
            assert fresh is not None
            if new_hash is not None and fresh.password_hash == stored:
                fresh.password_hash = new_hash  # argon2 parameters were raised: upgrade on the fly
                session.add(fresh)
            passwords.record_attempt(session, login=normal, user_id=fresh.id, ip=ip, user_agent=user_agent,
                                     success=True, reason="ok")
            raw, row = sessions.start_session(session, fresh, ip=ip, user_agent=user_agent)
            audit.record(session, audit.Actor(fresh.id, fresh.name), "auth.login", target=f"user:{fresh.id}",
                         data={"ip": ip, "session": row.id})
    if failed:
        if user is not None and ok and not user.active:
            raise ApiError(403, "deactivated", "this account is deactivated")
        raise ApiError(401, "wrong_credentials", WRONG)
    return LoginResult(fresh, raw, row, sessions.csrf_token(praxis.keyring, raw))


def logout(praxis: Praxis, session_id: int, actor: audit.Actor) -> None:
    with transaction(praxis.engine) as session:
        sessions.revoke_session(session, session_id)
        audit.record(session, actor, "auth.logout", target=f"user:{actor.id}", data={"session": session_id})
