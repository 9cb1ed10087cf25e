"""Commands by phone run once per message or call: the key is Twilio's MessageSid (SMS) or CallSid (voice).

A signed Twilio request can be re-posted as it is (a retry, or a replay by anyone who saw it), and each copy
carries a valid signature. The first copy claims the key before its command runs; every later copy finds the
claim and gets the first copy's answer, running and logging nothing. The claim is a primary-key insert, so two
copies arriving at once cannot both run.
"""

import time

from sqlalchemy import Engine, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from pingan.schemas.common import utcnow
from pingan.store.repository import Store
from pingan.store.tables import phone_commands

WAIT_FOR_FIRST_S = 5.0  # a copy that arrives while the first is still running waits this long for its answer


class PhoneCommands:
    def __init__(self, store: Store) -> None:
        self.engine: Engine = store.engine

    def claim(self, key: str, phone: str) -> tuple[bool, str | None]:
        """(True, None) when this caller now owns `key` and runs the command; (False, the first answer) when an
        earlier copy owns it: None only if that copy has not answered within WAIT_FOR_FIRST_S."""
        insert = pg_insert if self.engine.dialect.name == "postgresql" else sqlite_insert
        with self.engine.begin() as conn:
            claimed = conn.execute(insert(phone_commands).values(key=key, phone=phone[:64], at=utcnow())
                                   .on_conflict_do_nothing()).rowcount
        if claimed == 1:
            return True, None
        deadline = time.monotonic() + WAIT_FOR_FIRST_S
        while True:
            with self.engine.connect() as conn:
                reply = conn.scalar(select(phone_commands.c.reply).where(phone_commands.c.key == key))
            if reply is not None or time.monotonic() > deadline:
                return False, reply
            time.sleep(0.05)

    def release(self, key: str) -> None:
        """The command failed before it answered (the store, say): let a retry of the same message run it."""
        with self.engine.begin() as conn:
            conn.execute(phone_commands.delete().where(phone_commands.c.key == key))

    def answered(self, key: str, reply: str) -> None:
        """The first copy's answer, for every later copy."""
        with self.engine.begin() as conn:
            conn.execute(update(phone_commands).where(phone_commands.c.key == key).values(reply=reply))
