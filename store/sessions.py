"""Server-side sessions and the second factor's one-time codes (issue 13).

The session id lives only in the person's cookie; the table keeps its sha256, when it was made and last used, its
idle timeout, its CSRF token and when it last passed the second factor. One-time codes are six digits sent by SMS,
kept salted and hashed, good for minutes and once; a wrong one counts as a failure towards the account's lock
(store/identity.py). Sign-ins, sign-outs and every code sent, passed or failed are entries in the hash-chained log.
"""

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, RowMapping, and_, delete, select, update

from pingan.handlers.access.identity import CODE_DIGITS, code_digest, code_matches, digest, session_expired
from pingan.schemas.action import ActionKind
from pingan.schemas.common import utcnow
from pingan.store.engine import write_tx
from pingan.store.identity import IdentityStore, User, log_entry
from pingan.store.tables import one_time_codes, sessions

TOUCH_EVERY = timedelta(seconds=15)  # last_seen is written at most this often (the idle timeout is minutes)


@dataclass(frozen=True)
class Session:
    id_hash: str
    person_id: str
    created_at: datetime
    last_seen: datetime
    idle_timeout_s: int
    csrf_token: str
    second_factor_at: datetime | None


def _session(row: RowMapping) -> Session:
    return Session(id_hash=row["id_hash"], person_id=row["person_id"], created_at=row["created_at"],
                   last_seen=row["last_seen"], idle_timeout_s=row["idle_timeout_s"], csrf_token=row["csrf_token"],
                   second_factor_at=row["second_factor_at"])


class SessionStore:
    def __init__(self, engine: Engine, identity: IdentityStore, max_age_s: float) -> None:
        self.engine = engine
        self.identity = identity
        self.max_age_s = max_age_s

    def create(self, user: User, idle_timeout_s: int, client: str) -> tuple[str, Session]:
        """A new session for a person who just gave the right password; returns the secret for the cookie."""
        raw = secrets.token_urlsafe(32)
        now = utcnow()
        with write_tx(self.engine) as conn:
            # Sessions idle past their timeout, or older than the longest a session lives, are gone for good.
            conn.execute(delete(sessions).where(sessions.c.created_at < now - timedelta(seconds=self.max_age_s)))
            conn.execute(sessions.insert().values(
                id_hash=digest(raw), person_id=user.person_id, created_at=now, last_seen=now,
                idle_timeout_s=idle_timeout_s, csrf_token=secrets.token_urlsafe(24), second_factor_at=None))
            log_entry(conn, user.person_id, user.person_id, ActionKind.signed_in, method="password", client=client)
        found = self.find(raw)
        assert found is not None
        return raw, found

    def find(self, raw: str) -> Session | None:
        with self.engine.connect() as conn:
            row = conn.execute(select(sessions).where(sessions.c.id_hash == digest(raw))).mappings().first()
        return _session(row) if row else None

    def current(self, raw: str) -> tuple[Session | None, str | None]:
        """(the live session, None), or (None, why it is over: "idle", "too old" or "unknown"). A session past
        its timeout is ended (and logged) here; a live one has its last_seen moved on."""
        found = self.find(raw)
        if found is None:
            return None, "unknown"
        now = utcnow()
        why = session_expired(found.created_at, found.last_seen, now, found.idle_timeout_s, self.max_age_s)
        if why is not None:
            self.end(found, found.person_id, why)
            return None, why
        if now - found.last_seen > TOUCH_EVERY:
            with self.engine.begin() as conn:
                conn.execute(update(sessions).where(sessions.c.id_hash == found.id_hash).values(last_seen=now))
        return found, None

    def end(self, session: Session, actor: str, reason: str) -> None:
        with write_tx(self.engine) as conn:
            gone = conn.execute(delete(sessions).where(sessions.c.id_hash == session.id_hash)).rowcount
            conn.execute(delete(one_time_codes).where(one_time_codes.c.session_hash == session.id_hash))
            if gone:
                log_entry(conn, session.person_id, actor, ActionKind.signed_out, reason=reason)

    # -- the second factor ------------------------------------------------------------------------------------

    def issue_code(self, session: Session, ttl_s: float) -> str:
        """A fresh code for this session (earlier unused ones stop working). The caller sends it and then calls
        `code_sent`, so that the log says whether it went out."""
        code = "".join(secrets.choice("0123456789") for _ in range(CODE_DIGITS))
        salt = secrets.token_hex(8)
        now = utcnow()
        with self.engine.begin() as conn:
            conn.execute(update(one_time_codes).where(and_(
                one_time_codes.c.session_hash == session.id_hash, one_time_codes.c.used_at.is_(None))
            ).values(used_at=now))
            conn.execute(one_time_codes.insert().values(
                person_id=session.person_id, session_hash=session.id_hash, salt=salt, code_hash=code_digest(code, salt),
                created_at=now, expires_at=now + timedelta(seconds=ttl_s), used_at=None))
        return code

    def code_sent(self, session: Session, channel: str, to: str, outcome: str, detail: str | None = None) -> None:
        with write_tx(self.engine) as conn:
            log_entry(conn, session.person_id, session.person_id, ActionKind.second_factor_sent, channel=channel,
                      to=to, outcome=outcome, detail=detail)

    def verify_code(self, session: Session, code: str, client: str) -> tuple[bool, datetime | None]:
        """(True, None) when `code` is this session's live code: used up, and the session has passed the second
        factor. Otherwise (False, the end of a lock it caused or None): the failure is logged and counted."""
        now = utcnow()
        with self.engine.connect() as conn:
            rows = conn.execute(select(one_time_codes).where(and_(
                one_time_codes.c.session_hash == session.id_hash, one_time_codes.c.used_at.is_(None),
                one_time_codes.c.expires_at > now))).mappings().all()
        match = next((r for r in rows if code.strip().isdigit() and code_matches(code, r["salt"], r["code_hash"])),
                     None)
        if match is None:
            reason = "wrong or expired code" if rows else "no live code: request one first"
            until = self.identity.record_failure(session.person_id, client, reason, ActionKind.second_factor_failed)
            return False, until
        with write_tx(self.engine) as conn:
            used = conn.execute(update(one_time_codes).where(and_(
                one_time_codes.c.id == match["id"], one_time_codes.c.used_at.is_(None))).values(used_at=now)).rowcount
            if not used:  # the same code raced in twice: only one of them passes
                return False, None
            conn.execute(update(sessions).where(sessions.c.id_hash == session.id_hash).values(second_factor_at=now))
            log_entry(conn, session.person_id, session.person_id, ActionKind.second_factor_passed, method="sms",
                      client=client)
        self.identity.clear_failures(session.person_id)
        return True, None
