"""`tiswatch users`: accounts of the review app (app.sqlite in the data directory).

The first administrator is made here: `tiswatch users add NAME --role admin` (the password is asked
for, or read from standard input with --password-stdin). Everything is recorded in the audit log.
"""

from __future__ import annotations

import secrets
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from review.db import ROLES, UserError, open_appdb

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Review app accounts: add, list, disable, enable, unlock, set a role or password.")
console = Console()
err = Console(stderr=True)


def _db():
    from cli import state

    return open_appdb(state.settings())


def _password(stdin: bool, generate: bool) -> tuple[str, bool]:
    if generate:
        return secrets.token_urlsafe(12), True
    if stdin:
        return sys.stdin.readline().rstrip("\n"), False
    pw = typer.prompt("password (10 characters or more)", hide_input=True, confirmation_prompt=True)
    return pw, False


@app.command("add")
def add(
    username: Annotated[str, typer.Argument(help="user name (no spaces)")],
    role: Annotated[str, typer.Option(help=f"one of {', '.join(ROLES)}")] = "officer",
    name: Annotated[str, typer.Option(help="display name")] = "",
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")] = False,
    generate: Annotated[bool, typer.Option("--generate", help="generate a password and print it once")] = False,
) -> None:
    """Add a user. Roles: officer (triage and decide), investigator (search, read, export),
    partner_admin (partner pages only), admin (everything, users, audit log)."""
    db = _db()
    try:
        pw, shown = _password(password_stdin, generate)
        u = db.add_user(username, pw, role, name)
    except UserError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    finally:
        db.close()
    console.print(f"added {u.username} ({u.role})" + (f"; password: [bold]{pw}[/bold]" if shown else ""))


@app.command("list")
def list_users() -> None:
    """List users: role, state, last login."""
    db = _db()
    t = Table()
    for c in ("user", "name", "role", "state", "failed logins", "last login (UTC)"):
        t.add_column(c)
    for u in db.users():
        state = "active" if u.active else "disabled"
        if u.locked_until:
            state += f", locked until {u.locked_until}"
        t.add_row(u.username, u.display_name, u.role, state, str(u.failed_logins), u.last_login or "—")
    db.close()
    console.print(t)


def _op(fn_name: str, username: str, *args) -> None:
    db = _db()
    try:
        u = getattr(db, fn_name)(username, *args)
    except UserError as e:
        err.print(f"[red]{e}[/red]")
        raise typer.Exit(2) from None
    finally:
        db.close()
    if u is not None:
        console.print(f"{u.username}: role {u.role}, {'active' if u.active else 'disabled'}"
                      + (f", locked until {u.locked_until}" if u.locked_until else ""))


@app.command()
def disable(username: str) -> None:
    """Disable a user: their sessions end and their API tokens are revoked."""
    _op("set_active", username, False)


@app.command()
def enable(username: str) -> None:
    """Enable a disabled user again."""
    _op("set_active", username, True)


@app.command()
def unlock(username: str) -> None:
    """Lift a lock-out after repeated wrong passwords (it also ends by itself after [review] lockout_minutes)."""
    _op("unlock", username)


@app.command()
def role(username: str, new_role: Annotated[str, typer.Argument(help=f"one of {', '.join(ROLES)}")]) -> None:
    """Change a user's role (their sessions end)."""
    _op("set_role", username, new_role)


@app.command()
def password(
    username: str,
    password_stdin: Annotated[bool, typer.Option("--password-stdin", help="read the password from standard input")] = False,
    generate: Annotated[bool, typer.Option("--generate", help="generate a password and print it once")] = False,
) -> None:
    """Set a user's password (their sessions end; a lock-out is lifted)."""
    pw, shown = _password(password_stdin, generate)
    _op("set_password", username, pw)
    console.print(f"password of {username} set" + (f": [bold]{pw}[/bold]" if shown else ""))


def ensure_demo_user(settings, username: str = "demo") -> str:
    """For `tiswatch demo`: a demo officer with a fresh random password, returned to be printed.

    The demo serves on 127.0.0.1 only; the password changes on every demo run."""
    db = open_appdb(settings)
    try:
        pw = secrets.token_urlsafe(9)
        if db.user(username) is None:
            db.add_user(username, pw, "officer", "Demo officer")
        else:
            db.set_password(username, pw)
            if not db.user(username).active:  # type: ignore[union-attr]
                db.set_active(username, True)
        return pw
    finally:
        db.close()
