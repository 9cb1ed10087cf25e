"""The store: every durable fact of the pipeline, each change in one transaction with its log entries.

`Store` is the one facade the rest of Pingan holds; its methods live with the tables they serve: the outbox
(store/outbox.py), incidents as triage and the response decide them (store/incidents.py), the notification ledger
(store/ledger.py) and reads for people (store/queries.py).
"""

from sqlalchemy import Engine

from pingan.store.engine import make_engine
from pingan.store.incidents import IncidentStore
from pingan.store.ledger import LedgerStore
from pingan.store.outbox import OutboxStore
from pingan.store.queries import IncidentQueries


class Store(OutboxStore, IncidentStore, LedgerStore, IncidentQueries):
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine: Engine = make_engine(url)

    def close(self) -> None:
        self.engine.dispose()
