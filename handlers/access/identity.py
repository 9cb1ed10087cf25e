"""Decisions about people's credentials and what they may see: lockout, session expiry, the second factor's
freshness, phone masking, the departments an incident involves, and the rules for roles on accounts and tokens.
Pure: times and rows in, a decision out (store/identity.py and web/auth.py do the I/O)."""

import hashlib
import hmac
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pingan.handlers.access.permissions import SECOND_FACTOR, Permission, Role, permissions_of
from pingan.schemas.action import Action, ActionKind

SESSION_COOKIE = "pingan_session"  # HttpOnly, SameSite=Strict; the value is random, the store keeps its hash
SIGN_IN_CSRF_COOKIE = "pingan_csrf"  # the sign-in form's double-submit token (there is no session yet)
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf"
TOKEN_PREFIX = "pa_"  # personal API tokens: pa_<id>_<secret>, told apart from intake tokens at a glance
CODE_DIGITS = 6

# An E.164 number (or one written with spaces after the +country code), anywhere in a string.
_PHONE = re.compile(r"\+\d[\d ]{6,16}\d")


@dataclass(frozen=True)
class LockPolicy:
    """After `max_failures` wrong passwords or codes in a row, the account is locked for `lock_s` seconds."""

    max_failures: int = 5
    lock_s: float = 900.0


@dataclass(frozen=True)
class Failure:
    """What one more failed attempt does to an account: its new count, and a lock when it reached the limit."""

    failed_attempts: int
    locked_until: datetime | None

    @property
    def locks(self) -> bool:
        return self.locked_until is not None


def after_failure(failed_attempts: int, now: datetime, policy: LockPolicy) -> Failure:
    count = failed_attempts + 1
    if count >= policy.max_failures:
        return Failure(0, now + timedelta(seconds=policy.lock_s))  # the count starts again after the lock
    return Failure(count, None)


def locked(locked_until: datetime | None, now: datetime) -> bool:
    return locked_until is not None and now < locked_until


def session_expired(created: datetime, last_seen: datetime, now: datetime, idle_s: float,
                    max_age_s: float) -> str | None:
    """Why a session is over ("idle" or "too old"), or None while it may be used."""
    if now - last_seen > timedelta(seconds=idle_s):
        return "idle"
    if now - created > timedelta(seconds=max_age_s):
        return "too old"
    return None


def second_factor_fresh(passed_at: datetime | None, now: datetime, window_s: float) -> bool:
    return passed_at is not None and now - passed_at <= timedelta(seconds=window_s)


def needs_second_factor(roles: Iterable[Role | str]) -> bool:
    """Whether a person holds a permission that asks for the second factor (close, regrade)."""
    return bool(permissions_of(roles) & SECOND_FACTOR)


def digest(secret: str) -> str:
    """How session ids and API tokens are kept: random, long secrets need a fast hash, not a password hash."""
    return hashlib.sha256(secret.encode()).hexdigest()


def code_digest(code: str, salt: str) -> str:
    """A one-time code is short, so it is kept salted; it lives minutes and a few wrong tries lock the account."""
    return hmac.new(salt.encode(), code.strip().encode(), hashlib.sha256).hexdigest()


def code_matches(code: str, salt: str, stored: str) -> bool:
    return hmac.compare_digest(code_digest(code, salt), stored)


def parse_roles(names: Iterable[str]) -> list[Role]:
    """Role names to roles, in order and without repeats; ValueError naming the unknown ones and the known ones."""
    roles: list[Role] = []
    unknown = []
    for name in names:
        try:
            role = Role(name.strip())
        except ValueError:
            unknown.append(name)
            continue
        if role not in roles:
            roles.append(role)
    if unknown:
        raise ValueError(f"role: unknown {', '.join(map(repr, unknown))}; one of {', '.join(r.value for r in Role)}")
    if not roles:
        raise ValueError("role: at least one is needed")
    return roles


def token_roles_refusal(person_roles: Iterable[Role | str], token_roles: Iterable[Role | str]) -> str | None:
    """A token may carry only roles its person holds: why not, or None."""
    extra = sorted({Role(r) for r in token_roles} - {Role(r) for r in person_roles})
    if extra:
        return (f"role: the person does not hold {', '.join(r.value for r in extra)}; a token carries only the "
                f"person's own roles")
    return None


def effective_roles(person_roles: Iterable[Role | str], token_roles: Iterable[Role | str]) -> frozenset[Role]:
    """A token's roles as of now: a role taken from the person since the token was made is gone from it too."""
    return frozenset(Role(r) for r in token_roles) & frozenset(Role(r) for r in person_roles)


def safe_next(target: str | None, default: str = "/console/") -> str:
    """A redirect target after a form post: a local path only (never //host or a scheme), else the default."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target or "\n" in target:
        return default
    return target


# -- what a person may see ---------------------------------------------------------------------------------------

def mask_phone(text: str) -> str:
    """+12025550101 -> +1202555****: the last four digits hidden, so a number can be told apart but not called."""
    def hide(match: re.Match[str]) -> str:
        digits = match.group(0)
        kept, hidden = digits[:-4], digits[-4:]
        return kept + re.sub(r"\d", "*", hidden)

    return _PHONE.sub(hide, text)


def mask_phones(value: Any) -> Any:
    """The same JSON-like data with every phone number in every string masked."""
    if isinstance(value, str):
        return mask_phone(value) if "+" in value else value
    if isinstance(value, Mapping):
        return {k: mask_phones(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [mask_phones(v) for v in value]
    return value


def involved_departments(timeline: Iterable[Action | Mapping[str, Any]]) -> frozenset[str]:
    """The departments of the incident's active plan level: those of its latest `plan_activated` entry (a regrade
    re-plans and logs a new one)."""
    found: frozenset[str] = frozenset()
    for entry in timeline:
        kind = entry.kind if isinstance(entry, Action) else entry.get("kind")
        if kind == ActionKind.plan_activated or kind == ActionKind.plan_activated.value:
            details = entry.details if isinstance(entry, Action) else entry.get("details") or {}
            found = frozenset(str(d) for d in details.get("departments") or [])
    return found


def describe_permission_gap(roles: Iterable[Role | str], permission: Permission) -> str:
    held = ", ".join(sorted(Role(r).value for r in roles)) or "none"
    return f"permission {permission.value} is needed; your roles ({held}) do not have it"
