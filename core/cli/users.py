"""``praxis users`` and ``praxis clinics``: the first clinic and administrator, and account recovery.

The command line acts as the machine's operator: it is not limited by anyone's permissions, and its
changes are audited as actor "cli".
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any

import click
from sqlmodel import Session, col, select

from core.audit import Actor
from core.auth import passwords
from core.auth import users as service
from core.auth.clinics import LOCALES, create_clinic
from core.auth.errors import ApiError
from core.auth.permissions import catalog
from core.cli.common import load
from core.db import transaction
from core.models.auth import Membership, Role, User
from core.models.clinic import Clinic
from plugin_sdk.errors import ValidationFailed

CLI_ACTOR = Actor(None, "cli")


def readable(func: Callable[..., Any]) -> Callable[..., Any]:
    """Field errors and refusals as readable lines, exit code 1, no traceback."""

    @wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except ValidationFailed as exc:
            lines = "\n".join(f"  {e.field.replace('_', '-')}: {e.message}" for e in exc.errors)
            raise click.ClickException(f"not saved:\n{lines}") from exc
        except ApiError as exc:
            raise click.ClickException(exc.message) from exc

    return wrapper


def _clinic(session: Session, ref: str) -> Clinic:
    rows = session.exec(select(Clinic).order_by(col(Clinic.id))).all()
    for row in rows:
        if str(row.id) == ref or row.name.casefold() == ref.casefold():
            return row
    known = ", ".join(f"{c.id} ({c.name})" for c in rows) or "none yet: create one with 'praxis clinics create'"
    raise click.ClickException(f"no clinic {ref!r}; clinics: {known}")


def _user(session: Session, login: str) -> User:
    user = session.exec(select(User).where(User.login == passwords.normalize_login(login))).first()
    if user is None:
        raise click.ClickException(f"no user with login {login!r}")
    return user


def _read_password(from_stdin: bool, login: str) -> str:
    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    problems = passwords.policy_errors(password, login=login)
    if problems:
        raise click.ClickException("password not accepted: " + "; ".join(p.message for p in problems))
    return password


# --- users -------------------------------------------------------------------------------------------


@click.group()
def users() -> None:
    """Staff accounts."""


@users.command("create")
@click.option("--login", required=True, help="Login name (case-insensitive).")
@click.option("--name", required=True, help="Full name.")
@click.option("--clinic", required=True, multiple=True, help="Clinic id or name (repeatable).")
@click.option("--role", default="admin", show_default=True,
              help="admin, doctor, assistant, receptionist or a custom role code.")
@click.option("--email", default="")
@click.option("--phone", default="")
@click.option("--speciality", default="")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--must-change-password", is_flag=True, help="Ask for a new password at first login.")
@readable
def create(login: str, name: str, clinic: tuple[str, ...], role: str, email: str, phone: str, speciality: str,
           password_stdin: bool, must_change_password: bool) -> None:
    """Create a user working in one or more clinics (prompts for the password)."""
    praxis = load()
    with Session(praxis.engine) as session:
        clinic_ids = [_clinic(session, ref).id for ref in clinic]
    password = _read_password(password_stdin, login)
    with transaction(praxis.engine) as session:
        user = service.create_user(
            session, catalog(praxis.runtime), CLI_ACTOR, login=login, name=name, password=password,
            email=email, phone=phone, speciality=speciality, must_change_password=must_change_password,
            memberships=[service.MembershipSpec(c, role) for c in clinic_ids if c is not None],
        )
    click.echo(f"Created user {user.login} (id {user.id}) as {role} in clinic(s) {', '.join(clinic)}")


@users.command("list")
@click.option("--clinic", help="Only people working in this clinic (id or name).")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_users(clinic: str | None, as_json: bool) -> None:
    """List users with their role in each clinic."""
    praxis = load()
    with Session(praxis.engine) as session:
        names = {c.id: c.name for c in session.exec(select(Clinic)).all()}
        query = select(User).order_by(col(User.login))
        if clinic is not None:
            target = _clinic(session, clinic)
            query = query.where(col(User.id).in_(select(Membership.user_id).where(Membership.clinic_id == target.id)))
        rows = session.exec(query).all()
        memberships: dict[int, list[tuple[str, str]]] = {}
        for m, code in session.exec(select(Membership, Role.code).join(Role, col(Role.id) == Membership.role_id)
                                    .order_by(col(Membership.clinic_id))).all():
            memberships.setdefault(m.user_id, []).append((names.get(m.clinic_id, str(m.clinic_id)), code))
    data = [{"id": u.id, "login": u.login, "name": u.name, "active": u.active,
             "clinics": {c: r for c, r in memberships.get(u.id or 0, [])}} for u in rows]
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if not data:
        click.echo("No users yet: create one with 'praxis users create'.")
        return
    table = [["ID", "LOGIN", "NAME", "ACTIVE", "CLINICS"]] + [
        [str(d["id"]), d["login"], d["name"], "yes" if d["active"] else "no",
         ", ".join(f"{c}: {r}" for c, r in d["clinics"].items())] for d in data]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())


@users.command("set-password")
@click.argument("login")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of standard input.")
@click.option("--must-change-password", is_flag=True, help="Ask for another new password at next login.")
@readable
def set_password(login: str, password_stdin: bool, must_change_password: bool) -> None:
    """Set a user's password (ends their sessions). For a forgotten administrator password."""
    praxis = load()
    with Session(praxis.engine) as session:
        user = _user(session, login)
    password = _read_password(password_stdin, user.login)
    with transaction(praxis.engine) as session:
        fresh = session.get(User, user.id)
        assert fresh is not None
        service.reset_password(session, CLI_ACTOR, fresh, password, must_change=must_change_password)
    click.echo(f"Password of {user.login} changed; their sessions have ended")


@users.command("unlock")
@click.argument("login")
def unlock(login: str) -> None:
    """Lift a lockout after too many failed logins."""
    from core import audit

    praxis = load()
    with transaction(praxis.engine) as session:
        user = _user(session, login)
        cleared = passwords.unlock(session, user.login)
        audit.record(session, CLI_ACTOR, "user.unlocked", target=f"user:{user.id}", data={"cleared": cleared})
    click.echo(f"Unlocked {user.login}" if cleared else f"{user.login} was not locked")


# --- clinics -----------------------------------------------------------------------------------------


@click.group()
def clinics() -> None:
    """Clinics (branches)."""


@clinics.command("create")
@click.option("--name", required=True)
@click.option("--country", required=True, help="ISO 3166 alpha-2 code, e.g. HU.")
@click.option("--timezone", required=True, help="IANA time zone, e.g. Europe/Budapest.")
@click.option("--locale", required=True, help=f"One of {', '.join(LOCALES)}.")
@click.option("--address", default="")
@click.option("--phone", default="")
@click.option("--email", default="")
@readable
def create_clinic_cmd(name: str, country: str, timezone: str, locale: str, address: str, phone: str,
                      email: str) -> None:
    """Create a clinic; plugins are enabled in it as plugins.toml says."""
    praxis = load()
    with transaction(praxis.engine) as session:
        clinic = create_clinic(praxis, session, CLI_ACTOR, {
            "name": name, "country": country, "timezone": timezone, "locale": locale,
            "address": address, "phone": phone, "email": email})
    praxis.runtime.state.invalidate()
    enabled = praxis.runtime.enabled(clinic.id or 0, include_open_circuits=True)
    click.echo(f"Created clinic {clinic.name} (id {clinic.id})"
               + (f"; plugins enabled: {', '.join(enabled)}" if enabled else ""))



@clinics.command("list")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def list_clinics(as_json: bool) -> None:
    """List clinics."""
    praxis = load()
    with Session(praxis.engine) as session:
        rows = session.exec(select(Clinic).order_by(col(Clinic.id))).all()
    data = [{"id": c.id, "name": c.name, "country": c.country, "timezone": c.timezone, "locale": c.locale}
            for c in rows]
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False))
        return
    if not data:
        click.echo("No clinics yet: create one with 'praxis clinics create'.")
        return
    table = [["ID", "NAME", "COUNTRY", "TIMEZONE", "LOCALE"]] + [
        [str(d["id"]), d["name"], d["country"], d["timezone"], d["locale"]] for d in data]
    widths = [max(len(r[i]) for r in table) for i in range(5)]
    for row in table:
        click.echo("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip())
