"""People's accounts and personal API tokens: `pingan users add|passwd|disable|list`, `pingan tokens
create|revoke|list`. Run on the server by an operator with database access; each change is logged with the OS user
as the actor (cli:<user>)."""

import getpass
import sys
from typing import Annotated

import typer

from pingan.cli import runtime

users_app = typer.Typer(help="People's accounts (people of plans/directory/people.yaml) and their roles.",
                        no_args_is_help=True)
tokens_app = typer.Typer(help="Personal API tokens for scripts: shown once, stored hashed, revocable.",
                         no_args_is_help=True)

ROLE_HELP = ("A role: viewer, duty_officer, commander, public_information, plan_author, drill_coordinator, "
             "department_liaison, admin (repeat for several)")


def _actor() -> str:
    return f"cli:{getpass.getuser()}"


def _identity():  # type: ignore[no-untyped-def]
    from pingan.handlers.access.identity import LockPolicy
    from pingan.store.identity import IdentityStore

    settings = runtime.settings()
    return IdentityStore(runtime.store().engine, LockPolicy(settings.sign_in_max_failures,
                                                            float(settings.sign_in_lock_s)))


def _password(stdin: bool) -> str:
    if stdin:
        return sys.stdin.readline().rstrip("\n")
    first = getpass.getpass("password: ")
    if getpass.getpass("again: ") != first:
        runtime.fail("password: the two entries differ")
    return first


@users_app.command("add")
def add(person: Annotated[str, typer.Argument(help="Person id of the directory, e.g. chen-jianhua")],
        role: Annotated[list[str], typer.Option("--role", help=ROLE_HELP)],
        department: Annotated[list[str] | None, typer.Option(
            "--department", help="A liaison's department (repeat); default: the person's own department")] = None,
        lang: Annotated[str | None, typer.Option(help="zh or en; default: the directory's")] = None,
        password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read the password from the first "
                                                     "line of standard input instead of prompting")] = False) -> None:
    """Give a person of the directory an account with ROLEs; prompts for the password."""
    from pingan.handlers.plans.load import load_plans
    from pingan.store.identity import IdentityRefused

    directory = load_plans(runtime.settings().plans_dir).directory
    try:
        user = _identity().add_user(directory, person, role, _password(password_stdin), _actor(),
                                    departments=department or None, lang=lang)
    except IdentityRefused as exc:
        runtime.fail(str(exc))
    runtime.echo(f"{user.person_id}: {', '.join(r.value for r in user.roles)}"
               + (f" (departments: {', '.join(user.departments)})" if user.departments else ""))


@users_app.command("passwd")
def passwd(person: Annotated[str, typer.Argument(help="Person id")],
           password_stdin: Annotated[bool, typer.Option("--password-stdin", help="Read it from standard input")]
           = False) -> None:
    """Set a new password (clears a lock; ends the person's sessions)."""
    from pingan.store.identity import IdentityRefused

    try:
        _identity().set_password(person, _password(password_stdin), _actor())
    except IdentityRefused as exc:
        runtime.fail(str(exc))
    typer.echo(f"{person}: password changed")


@users_app.command("disable")
def disable(person: Annotated[str, typer.Argument(help="Person id")]) -> None:
    """No more sign-ins, sessions or tokens for this person."""
    from pingan.store.identity import IdentityRefused

    try:
        _identity().disable(person, _actor())
    except IdentityRefused as exc:
        runtime.fail(str(exc))
    typer.echo(f"{person}: disabled")


@users_app.command("list")
def list_users() -> None:
    """Every account: roles, departments, language, and whether it is disabled or locked."""
    from pingan.schemas.common import utcnow

    now = utcnow()
    for user in _identity().users():
        state = "disabled" if user.disabled else (
            f"locked until {user.locked_until.isoformat(timespec='seconds')}"
            if user.locked_until and user.locked_until > now else "active")
        runtime.echo(f"{user.person_id:<20} {','.join(r.value for r in user.roles):<36} "
                     f"{','.join(user.departments) or '-':<20} {user.lang}  {state}")


@tokens_app.command("create")
def create(person: Annotated[str, typer.Option(help="Person id of the token's owner")],
           role: Annotated[list[str], typer.Option("--role", help=ROLE_HELP + "; only roles the person holds")],
           label: Annotated[str, typer.Option(help="What the token is for, e.g. drill runner")] = "") -> None:
    """Create a personal API token; prints it once (only its hash is kept)."""
    from pingan.store.identity import IdentityRefused

    try:
        token, secret = _identity().create_token(person, role, _actor(), label)
    except IdentityRefused as exc:
        runtime.fail(str(exc))
    runtime.echo(f"token {token.id} for {token.person_id} ({', '.join(r.value for r in token.roles)}); shown once:",
                 err=True)
    typer.echo(secret)


@tokens_app.command("revoke")
def revoke(token_id: Annotated[str, typer.Argument(metavar="ID", help="The token's id (pingan tokens list)")]
           ) -> None:
    """Revoke a token: it stops working at once."""
    from pingan.store.identity import IdentityRefused

    try:
        token = _identity().revoke_token(token_id, _actor())
    except IdentityRefused as exc:
        runtime.fail(str(exc))
    runtime.echo(f"token {token.id} of {token.person_id}: revoked")


@tokens_app.command("list")
def list_tokens(person: Annotated[str | None, typer.Option(help="Only this person's")] = None) -> None:
    """Every token: id, person, roles, created, last used, revoked."""
    for t in _identity().tokens(person):
        used = t.last_used_at.isoformat(timespec="seconds") if t.last_used_at else "never"
        state = f"revoked {t.revoked_at.isoformat(timespec='seconds')}" if t.revoked_at else "live"
        runtime.echo(f"{t.id}  {t.person_id:<20} {','.join(r.value for r in t.roles):<30} "
                     f"created {t.created_at.isoformat(timespec='seconds')}  used {used}  {state}"
                     + (f"  {t.label}" if t.label else ""))
