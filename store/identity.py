"""People's accounts and personal API tokens (issue 13). Accounts belong to people of the directory
(plans/directory/people.yaml); passwords are argon2id hashes (argon2-cffi); a token is shown once and kept as a
sha256 of itself. Every change and every failed attempt is an entry in the hash-chained log under incident id
"user:<person id>", written in the same transaction as the change.

The decisions (lockout, which roles a token may carry) are pure, in handlers/access/identity.py.
"""

import json
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine, RowMapping, delete, select, update

from pingan.handlers.access.identity import (
    TOKEN_PREFIX,
    LockPolicy,
    after_failure,
    digest,
    effective_roles,
    locked,
    parse_roles,
    token_roles_refusal,
)
from pingan.handlers.access.permissions import SCOPED_ROLES, Role
from pingan.handlers.plans.directory import DirectoryIndex
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.store.engine import write_tx
from pingan.store.log import append_actions
from pingan.store.tables import api_tokens, sessions, users

MIN_PASSWORD = 10
LANGS = ("zh", "en")
_hasher = PasswordHasher()  # argon2id with the library's defaults (RFC 9106's second recommended profile)
_DUMMY_HASH = _hasher.hash("not a password of anyone")  # verified against when there is no account, to take as long
LAST_USED_EVERY = timedelta(seconds=60)  # a token's last_used_at is written at most this often


class IdentityRefused(ValueError):
    """A change that cannot be made; the message names the field and says why (CLI and HTTP show it as it is)."""


class SignInRefused(Exception):
    """Wrong person, password or code, or a locked account: the message is safe to show to whoever tried."""

    def __init__(self, message: str, *, locked_until: datetime | None = None) -> None:
        super().__init__(message)
        self.locked_until = locked_until


@dataclass(frozen=True)
class User:
    person_id: str
    roles: tuple[Role, ...]
    departments: tuple[str, ...]
    disabled: bool
    failed_attempts: int
    locked_until: datetime | None
    lang: str
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class ApiToken:
    id: str
    person_id: str
    roles: tuple[Role, ...]
    label: str
    created_at: datetime
    created_by: str
    revoked_at: datetime | None
    last_used_at: datetime | None


def user_log(person_id: str) -> str:
    return f"user:{person_id}"


def log_entry(conn: Connection, person_id: str, actor: str, kind: ActionKind, **details: Any) -> None:
    append_actions(conn, [ActionDraft(incident_id=user_log(person_id), at=utcnow(), actor=actor, kind=kind,
                                      details={k: v for k, v in details.items() if v is not None})])


def _user(row: RowMapping) -> User:
    return User(person_id=row["person_id"], roles=tuple(Role(r) for r in json.loads(row["roles"])),
                departments=tuple(json.loads(row["departments"])), disabled=bool(row["disabled"]),
                failed_attempts=row["failed_attempts"], locked_until=row["locked_until"], lang=row["lang"],
                created_at=row["created_at"], updated_at=row["updated_at"])


def _token(row: RowMapping) -> ApiToken:
    return ApiToken(id=row["id"], person_id=row["person_id"], roles=tuple(Role(r) for r in json.loads(row["roles"])),
                    label=row["label"], created_at=row["created_at"], created_by=row["created_by"],
                    revoked_at=row["revoked_at"], last_used_at=row["last_used_at"])


def check_password_rules(password: str) -> None:
    if len(password) < MIN_PASSWORD:
        raise IdentityRefused(f"password: at least {MIN_PASSWORD} characters")
    if len(password) > 1024:
        raise IdentityRefused("password: at most 1024 characters")


class IdentityStore:
    def __init__(self, engine: Engine, policy: LockPolicy | None = None) -> None:
        self.engine = engine
        self.policy = policy or LockPolicy()

    # -- accounts ---------------------------------------------------------------------------------------------

    def add_user(self, directory: DirectoryIndex, person_id: str, roles: Iterable[str], password: str, actor: str,
                 departments: Iterable[str] | None = None, lang: str | None = None) -> User:
        """An account for a person of the directory; refused for anyone else, or twice."""
        person = directory.people.get(person_id)
        if person is None:
            raise IdentityRefused(f"person: {person_id!r} is not in the directory (plans/directory/people.yaml)")
        try:
            parsed = parse_roles(roles)
        except ValueError as exc:
            raise IdentityRefused(str(exc)) from None
        check_password_rules(password)
        depts = list(dict.fromkeys(departments or ([person.department] if person.department else [])))
        unknown = [d for d in depts if directory.departments and d not in directory.departments]
        if unknown:
            raise IdentityRefused(f"department: not in the directory: {', '.join(unknown)}")
        if set(parsed) & SCOPED_ROLES and not depts:
            raise IdentityRefused("department: a department liaison needs at least one department")
        language = lang or person.lang
        if language not in LANGS:
            raise IdentityRefused(f"lang: one of {', '.join(LANGS)}")
        now = utcnow()
        hashed = _hasher.hash(password)
        with write_tx(self.engine) as conn:
            if conn.scalar(select(users.c.person_id).where(users.c.person_id == person_id)):
                raise IdentityRefused(f"person: {person_id} already has an account (pingan users passwd to reset "
                                      "the password)")
            conn.execute(users.insert().values(
                person_id=person_id, password_hash=hashed, roles=json.dumps([r.value for r in parsed]),
                departments=json.dumps(depts), disabled=0, failed_attempts=0, locked_until=None, lang=language,
                created_at=now, updated_at=now))
            log_entry(conn, person_id, actor, ActionKind.user_added, roles=[r.value for r in parsed],
                      departments=depts, lang=language)
        found = self.user(person_id)
        assert found is not None
        return found

    def set_password(self, person_id: str, password: str, actor: str) -> None:
        """A new password; the failure count and any lock are cleared and every session of the person ends."""
        check_password_rules(password)
        hashed = _hasher.hash(password)
        with write_tx(self.engine) as conn:
            self._require(conn, person_id)
            conn.execute(update(users).where(users.c.person_id == person_id).values(
                password_hash=hashed, failed_attempts=0, locked_until=None, updated_at=utcnow()))
            ended = conn.execute(delete(sessions).where(sessions.c.person_id == person_id)).rowcount
            log_entry(conn, person_id, actor, ActionKind.password_changed, sessions_ended=ended)

    def disable(self, person_id: str, actor: str) -> None:
        """No more sign-ins, sessions or tokens for this person (the tokens stay listed, and stop working)."""
        with write_tx(self.engine) as conn:
            self._require(conn, person_id)
            conn.execute(update(users).where(users.c.person_id == person_id).values(disabled=1, updated_at=utcnow()))
            ended = conn.execute(delete(sessions).where(sessions.c.person_id == person_id)).rowcount
            log_entry(conn, person_id, actor, ActionKind.user_disabled, sessions_ended=ended)

    def set_lang(self, person_id: str, lang: str, actor: str) -> None:
        if lang not in LANGS:
            raise IdentityRefused(f"lang: one of {', '.join(LANGS)}")
        with write_tx(self.engine) as conn:
            self._require(conn, person_id)
            conn.execute(update(users).where(users.c.person_id == person_id).values(lang=lang, updated_at=utcnow()))
            log_entry(conn, person_id, actor, ActionKind.user_changed, lang=lang)

    def user(self, person_id: str) -> User | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.person_id == person_id)).mappings().first()
        return _user(row) if row else None

    def users(self) -> list[User]:
        with self.engine.connect() as conn:
            return [_user(r) for r in conn.execute(select(users).order_by(users.c.person_id)).mappings()]

    @staticmethod
    def _require(conn: Connection, person_id: str) -> None:
        if not conn.scalar(select(users.c.person_id).where(users.c.person_id == person_id)):
            raise IdentityRefused(f"person: {person_id!r} has no account (pingan users add)")

    # -- signing in -------------------------------------------------------------------------------------------

    def check_password(self, person_id: str, password: str, actor: str) -> User:
        """The person, when the password is theirs and the account is usable; else SignInRefused, logged (and a
        lock once the failures in a row reach the policy's limit, logged too). `actor` is who tried (web:<ip>)."""
        now = utcnow()
        with self.engine.connect() as conn:
            row = conn.execute(select(users).where(users.c.person_id == person_id)).mappings().first()
        if row is None or row["disabled"]:
            _verify(_DUMMY_HASH, password)  # as slow as a real check: timing does not tell who has an account
            self._log_failure(person_id, actor, "no account" if row is None else "disabled")
            raise SignInRefused("person or password: wrong")
        if locked(row["locked_until"], now):
            self._log_failure(person_id, actor, "locked")
            raise SignInRefused(_locked_message(row["locked_until"]), locked_until=row["locked_until"])
        if not _verify(row["password_hash"], password):
            self.record_failure(person_id, actor, "wrong password")
            raise SignInRefused("person or password: wrong")
        with write_tx(self.engine) as conn:
            values: dict[str, Any] = {"failed_attempts": 0, "locked_until": None}
            if _hasher.check_needs_rehash(row["password_hash"]):
                values["password_hash"] = _hasher.hash(password)
            conn.execute(update(users).where(users.c.person_id == person_id).values(**values))
        found = self.user(person_id)
        assert found is not None
        return found

    def record_failure(self, person_id: str, actor: str, reason: str, kind: ActionKind = ActionKind.sign_in_failed
                       ) -> datetime | None:
        """One more failure in a row (a wrong password or code): logged, and a lock when it reaches the limit.
        Returns the end of the lock it caused, or None."""
        now = utcnow()
        with write_tx(self.engine) as conn:
            row = conn.execute(select(users.c.failed_attempts).where(users.c.person_id == person_id)).first()
            if row is None:
                log_entry(conn, person_id, actor, kind, reason=reason)
                return None
            failure = after_failure(row.failed_attempts, now, self.policy)
            conn.execute(update(users).where(users.c.person_id == person_id).values(
                failed_attempts=failure.failed_attempts,
                **({"locked_until": failure.locked_until} if failure.locks else {})))
            log_entry(conn, person_id, actor, kind, reason=reason, failures_in_a_row=row.failed_attempts + 1)
            if failure.locks:
                ended = conn.execute(delete(sessions).where(sessions.c.person_id == person_id)).rowcount
                log_entry(conn, person_id, actor, ActionKind.account_locked, until=failure.locked_until.isoformat()
                          if failure.locked_until else None, after=self.policy.max_failures, sessions_ended=ended)
            return failure.locked_until

    def clear_failures(self, person_id: str) -> None:
        with write_tx(self.engine) as conn:
            conn.execute(update(users).where(users.c.person_id == person_id).values(failed_attempts=0))

    def _log_failure(self, person_id: str, actor: str, reason: str) -> None:
        with write_tx(self.engine) as conn:
            log_entry(conn, person_id, actor, ActionKind.sign_in_failed, reason=reason)

    # -- personal API tokens ----------------------------------------------------------------------------------

    def create_token(self, person_id: str, roles: Iterable[str], actor: str, label: str = "") -> tuple[ApiToken, str]:
        """A token carrying `roles` (a subset of the person's); returns it and its secret, which is never stored."""
        try:
            parsed = parse_roles(roles)
        except ValueError as exc:
            raise IdentityRefused(str(exc)) from None
        user = self.user(person_id)
        if user is None:
            raise IdentityRefused(f"person: {person_id!r} has no account (pingan users add)")
        if user.disabled:
            raise IdentityRefused(f"person: {person_id}'s account is disabled")
        refusal = token_roles_refusal(user.roles, parsed)
        if refusal:
            raise IdentityRefused(refusal + f" (theirs: {', '.join(r.value for r in user.roles)})")
        token_id = secrets.token_hex(4)
        secret = f"{TOKEN_PREFIX}{token_id}_{secrets.token_urlsafe(32)}"
        with write_tx(self.engine) as conn:
            conn.execute(api_tokens.insert().values(
                id=token_id, token_hash=digest(secret), person_id=person_id,
                roles=json.dumps([r.value for r in parsed]), label=label[:200], created_at=utcnow(),
                created_by=actor, revoked_at=None, last_used_at=None))
            log_entry(conn, person_id, actor, ActionKind.token_created, token=token_id,
                      roles=[r.value for r in parsed], label=label or None)
        found = self.token(token_id)
        assert found is not None
        return found, secret

    def revoke_token(self, token_id: str, actor: str) -> ApiToken:
        with write_tx(self.engine) as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
            if row is None:
                raise IdentityRefused(f"token: no token {token_id!r} (pingan tokens list)")
            if row["revoked_at"] is None:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token_id).values(revoked_at=utcnow()))
                log_entry(conn, row["person_id"], actor, ActionKind.token_revoked, token=token_id)
        found = self.token(token_id)
        assert found is not None
        return found

    def token(self, token_id: str) -> ApiToken | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.id == token_id)).mappings().first()
        return _token(row) if row else None

    def tokens(self, person_id: str | None = None) -> list[ApiToken]:
        query = select(api_tokens).order_by(api_tokens.c.created_at, api_tokens.c.id)
        if person_id:
            query = query.where(api_tokens.c.person_id == person_id)
        with self.engine.connect() as conn:
            return [_token(r) for r in conn.execute(query).mappings()]

    def token_owner(self, secret: str) -> tuple[ApiToken, User, frozenset[Role]] | None:
        """The live token with this secret, its person and the roles it carries now; None when unknown, revoked,
        or its person is disabled or locked."""
        if not secret.startswith(TOKEN_PREFIX):
            return None
        with self.engine.connect() as conn:
            row = conn.execute(select(api_tokens).where(api_tokens.c.token_hash == digest(secret))).mappings().first()
            owner = conn.execute(select(users).where(users.c.person_id == row["person_id"])).mappings().first() \
                if row is not None else None
        if row is None or owner is None or row["revoked_at"] is not None:
            return None
        token, user = _token(row), _user(owner)
        now = utcnow()
        if user.disabled or locked(user.locked_until, now):
            return None
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(api_tokens).where(api_tokens.c.id == token.id).values(last_used_at=now))
        return token, user, effective_roles(user.roles, token.roles)


def _verify(hashed: str, password: str) -> bool:
    try:
        return _hasher.verify(hashed, password)
    except (VerificationError, InvalidHashError):
        return False


def _locked_message(until: datetime | None) -> str:
    when = until.strftime("%H:%M:%S UTC") if until else "later"
    return f"person: the account is locked after repeated failures, until {when}"
