"""Leases: one holder at a time for a chore that every worker could do, taken over when the holder stops renewing.

An efficiency lease, not a correctness one: a holder that stalls past its lease while another takes over may do
the chore once more (the outbox relay would publish a batch twice, which the idempotent consumers absorb).
"""

from datetime import datetime, timedelta

from sqlalchemy import and_, or_, update
from sqlalchemy.exc import IntegrityError

from pingan.schemas.common import utcnow
from pingan.store.repository import Store
from pingan.store.tables import leases


class Lease:
    def __init__(self, store: Store, name: str, holder: str, ttl_s: float) -> None:
        self.engine = store.engine
        self.name, self.holder, self.ttl = name, holder, timedelta(seconds=ttl_s)
        self.until: datetime | None = None  # ours until then, as far as we know

    def hold(self, now: datetime | None = None) -> bool:
        """True if this holder has the lease now. Renews it when half of it is gone; asks the store otherwise."""
        now = now or utcnow()
        if self.until is not None and now < self.until - self.ttl / 2:
            return True
        until = now + self.ttl
        with self.engine.begin() as conn:
            taken = conn.execute(update(leases).where(and_(
                leases.c.name == self.name, or_(leases.c.holder == self.holder, leases.c.until < now)))
                .values(holder=self.holder, until=until)).rowcount == 1
        if not taken:
            try:
                with self.engine.begin() as conn:
                    conn.execute(leases.insert().values(name=self.name, holder=self.holder, until=until))
                taken = True
            except IntegrityError:  # the row exists: another holder has it, and its lease has not run out
                taken = False
        self.until = until if taken else None
        return taken

    def release(self) -> None:
        """Let another holder take it at once (a clean stop), instead of after the lease runs out."""
        if self.until is not None:
            with self.engine.begin() as conn:
                conn.execute(update(leases).where(and_(leases.c.name == self.name, leases.c.holder == self.holder))
                             .values(until=utcnow() - self.ttl))
            self.until = None
