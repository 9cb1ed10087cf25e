"""What tests/integration/test_two_workers.py drives its two workers with: the test plan, which partition a key lands
on and which partitions faust assigned a worker (read from its log), the Worker and Rig wrappers, starting both,
SIGKILLing one, and the exactly-once check."""

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kafka.partitioner.default import murmur2
from sqlalchemy import text

from pingan.handlers.channels.console import read_sink
from pingan.schemas.incident import IncidentReport
from pingan.store.repository import Store
from pingan.streams.topics import DEFAULT_PARTITIONS
from tests.fixtures.stack import Proc, wait_for

PLAN_ID = "two-workers"
DUTY = "cai-wenjun"  # plans/directory/people.yaml: a duty-room officer with a console contact
SCALE = 60  # PINGAN_ESCALATION_TIME_SCALE: a plan minute is a second
EARLY_ACK_MIN = 10  # grade III repeats its line this many plan minutes after t+0: while both workers run
LATE_ACK_MIN = 45  # grade II: after the kill
LEASE_S = 30  # a claim older than this lost its worker (the console answers in milliseconds)
SETTLED = ("delivered", "sent", "failed")


def plan_yaml() -> str:
    """Grade IV: one console line per incident. Grades III and II: the same line, repeated once if nobody
    acknowledges it within EARLY_ACK_MIN or LATE_ACK_MIN.

    The text carries the incident id, so every line in the sink and on a worker's stdout names its incident."""
    def level(grade: str, **step: Any) -> dict[str, Any]:
        return {"grade": grade, "response_level": "测试响应", "notify": [{
            "id": "duty", "targets": [{"person": DUTY}], "channels": ["console"], "delay_min": 0,
            "template": {"zh": "双机 {id}"}, **step}]}

    plan = {
        "id": PLAN_ID, "title": {"zh": "双机接管测试预案", "en": "Two-worker takeover test plan"}, "version": 1,
        "owner": "emergency", "status": "approved", "effective_from": "2026-01-01",
        "approved_by": ["huang-liping"], "last_editor": "zhou-haibo",
        "applies_to": {"category": "accident_disaster", "subtypes": ["transport"]},
        "levels": [level("I"), level("II", ack_timeout_min=LATE_ACK_MIN, repeat=1),
                   level("III", ack_timeout_min=EARLY_ACK_MIN, repeat=1), level("IV")],
    }
    return yaml.safe_dump(plan, allow_unicode=True, sort_keys=False)


def partition_of(key: str) -> int:
    """The partition kafka-python and aiokafka's default partitioner (murmur2) give this key."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % DEFAULT_PARTITIONS


_ASSIGNED = re.compile(r"^\[(?P<at>[\d\- :,]+)\] \[\d+\] \[INFO\] Setting newly assigned partitions")
_ROW = re.compile(r"^\|\s*(?P<topic>\S+)\s*\|\s*\{(?P<parts>[\d\-, ]*)\}\s*\|")


def _parts(spec: str) -> set[int]:
    out: set[int] = set()
    for item in filter(None, (s.strip() for s in spec.split(","))):
        lo, _, hi = item.partition("-")
        out.update(range(int(lo), int(hi or lo) + 1))
    return out


def assignments(log: str, topic: str) -> list[tuple[str, set[int]]]:
    """Every (time, partitions of `topic`) faust logged for this worker, oldest first."""
    found: list[tuple[str, set[int]]] = []
    # Log lines are kept one line each (schemas/printable.py): faust's assignment table comes as one record with
    # its newlines escaped, so they are turned back here to read the table's rows.
    lines = log.replace("\\x0a", "\n").splitlines()
    for i, line in enumerate(lines):
        m = _ASSIGNED.match(line)
        if not m:
            continue
        parts: set[int] = set()
        for row in lines[i + 1:i + 20]:
            r = _ROW.match(row)
            if r and r["topic"] == topic:
                parts = _parts(r["parts"])
            if row.startswith("+") and "for group" in row:
                break
        found.append((m["at"], parts))
    return found


@dataclass
class Worker:
    name: str
    proc: Proc

    def log(self) -> str:
        return self.proc.log_path.read_text(errors="replace")

    def partitions(self, topic: str) -> set[int]:
        seen = assignments(self.log(), topic)
        return seen[-1][1] if seen else set()

    def resumed(self) -> bool:
        """It re-published its partitions' unfinished work after its latest assignment (streams/takeover.py), so a
        burst submitted now is not copied by that."""
        log = self.log()
        return log.rfind("] resume {") > log.rfind("Setting newly assigned partitions") >= 0

    def delivered_ids(self) -> Counter[str]:
        """Incident ids of the console lines this worker printed (one per notification it sent)."""
        return Counter(re.findall(r": 双机 (INC-[0-9A-Z]+)\s*$", self.log(), re.MULTILINE))


@dataclass
class Rig:
    env: dict[str, str]
    store: Store
    sink: Path
    workers: list[Worker] = field(default_factory=list)

    @property
    def raw_topic(self) -> str:
        return self.env["PINGAN_TOPIC_PREFIX"] + "incidents.raw"

    def topic(self, name: str) -> str:
        return self.env["PINGAN_TOPIC_PREFIX"] + name

    def accept(self, reports: list[IncidentReport]) -> list[str]:
        return [a.incident_id for a in self.store.accept_many(reports, self.raw_topic)]

    def sql(self, query: str, **params: Any) -> list[Any]:
        with self.store.engine.connect() as conn:
            return list(conn.execute(text(query), params).all())

    def count(self, query: str, **params: Any) -> int:
        return int(self.sql(query, **params)[0][0] or 0)

    def kinds(self, kind: str) -> Counter[str]:
        """incident id -> how many log entries of this kind it has."""
        rows = self.sql("SELECT incident_id, COUNT(*) FROM actions WHERE kind = :kind GROUP BY incident_id",
                        kind=kind)
        return Counter({r[0]: r[1] for r in rows})

    def ledger_states(self) -> Counter[str]:
        return Counter({r[0]: r[1] for r in self.sql("SELECT state, COUNT(*) FROM notifications GROUP BY state")})

    def settled(self) -> bool:
        """No intent waits, no event is untriaged, and no incident lacks its response."""
        states = self.ledger_states()
        untriaged = self.count("SELECT COUNT(*) FROM outbox o LEFT JOIN triage_events t ON t.event_id = o.event_id "
                               "WHERE t.event_id IS NULL")
        return untriaged == 0 and not (set(states) - set(SETTLED))

    def wait(self, predicate: Callable[[], Any], timeout_s: float, what: str, interval_s: float = 0.5) -> Any:
        """wait_for, but a timeout shows the ledger and the workers' logs."""
        try:
            return wait_for(predicate, timeout_s, interval_s=interval_s, what=what)
        except AssertionError as e:
            raise AssertionError(f"{e}; {self.diagnosis()}") from None

    def progress(self, count: Callable[[], int], target: int, stall_s: float, what: str) -> None:
        """Wait until count() reaches target; give up only when it stops moving for stall_s (the machine is shared,
        so a slow run is not a failure, a stuck one is)."""
        last, moved = -1, time.monotonic()
        while (now := count()) < target:
            if now != last:
                last, moved = now, time.monotonic()
            elif time.monotonic() - moved > stall_s:
                raise AssertionError(f"stuck at {now} of {target} {what} for {stall_s:g} s; {self.diagnosis()}")
            time.sleep(0.5)

    def diagnosis(self) -> str:
        stuck = self.sql("SELECT incident_id, state, attempts, updated_at, detail FROM notifications "
                         "WHERE state NOT IN ('delivered', 'sent', 'failed') LIMIT 10")
        logs = "\n".join(f"--- {w.name} ({w.proc.log_path})\n" + "\n".join(
            [line for line in w.log().splitlines() if "双机" not in line][-30:]) for w in self.workers)
        untriaged = self.sql("SELECT o.proposed_incident_id, o.published_at FROM outbox o LEFT JOIN triage_events t "
                             "ON t.event_id = o.event_id WHERE t.event_id IS NULL LIMIT 1000")
        unanswered = self.sql("SELECT i.id, t.at FROM incidents i JOIN triage_events t ON t.incident_id = i.id "
                              "LEFT JOIN responses r ON r.incident_id = i.id WHERE r.incident_id IS NULL LIMIT 1000")
        return (f"ledger {dict(self.ledger_states())}, unsettled {stuck}; {len(untriaged)} untriaged "
                f"{untriaged[:5]}; {len(unanswered)} without a response {unanswered[:5]}\n{logs}")

    def start(self, factory: Callable[[dict[str, str]], Proc], name: str) -> Worker:
        data_dir = Path(self.env["PINGAN_DATA_DIR"]).parent / name
        data_dir.mkdir()
        worker = Worker(name, factory({**self.env, "PINGAN_DATA_DIR": str(data_dir)}))
        self.workers.append(worker)
        return worker

    def both_share(self, a: Worker, b: Worker) -> bool:
        """The latest assignment of each splits every pipeline topic's partitions between them."""
        for name in ("incidents.raw", "incidents", "notifications"):
            pa, pb = a.partitions(self.topic(name)), b.partitions(self.topic(name))
            if not pa or not pb or pa & pb or pa | pb != set(range(DEFAULT_PARTITIONS)):
                return False
        return True


def report(title: str, key: str, grade: str = "IV") -> IncidentReport:
    return IncidentReport(category="accident_disaster", subtype="transport", grade=grade, title=title, dedup_key=key)


def start_two(rig: Rig, worker_factory: Callable[[dict[str, str]], Proc]) -> tuple[Worker, Worker, float]:
    """Start both workers, see an incident through, and wait until they split the partitions. Returns the time
    that took."""
    t0 = time.monotonic()
    a = rig.start(worker_factory, "worker-a")
    warm = rig.accept([report("预热", "warm-up")])[0]
    rig.wait(lambda: rig.kinds("notified")[warm] == 1, 120, "the warm-up incident to be notified")
    b = rig.start(worker_factory, "worker-b")
    rig.wait(lambda: rig.both_share(a, b) and a.resumed() and b.resumed(), 120, "both workers to hold partitions")
    return a, b, time.monotonic() - t0


def kill(rig: Rig, victim: Worker) -> float:
    victim.proc.kill_tree()  # SIGKILL to its process group: no LeaveGroup, no flush, no commit
    return time.monotonic()


def rebalanced_after(survivor: Worker, topic: str, killed_at_wall: float) -> float | None:
    """Seconds from the kill to the survivor's first assignment holding every partition, by its log's clock."""
    for at, parts in assignments(survivor.log(), topic):
        day, ms = at.split(",")
        t = time.mktime(time.strptime(day, "%Y-%m-%d %H:%M:%S")) + int(ms) / 1000
        if t >= killed_at_wall and parts == set(range(DEFAULT_PARTITIONS)):
            return t - killed_at_wall
    return None


def assert_each_notified_once(rig: Rig, ids: list[str]) -> None:
    rows = rig.sql("SELECT incident_id, idempotency_key, state, detail FROM notifications")
    mine = [r for r in rows if r.incident_id in set(ids)]
    assert Counter(r.incident_id for r in mine) == Counter({i: 1 for i in ids}), "one intent per incident"
    not_delivered = [(r.incident_id, r.state, r.detail) for r in mine if r.state != "delivered"]
    assert not not_delivered, f"{len(not_delivered)} of {len(ids)} not delivered: {not_delivered[:5]}"
    notified, delivered = rig.kinds("notified"), rig.kinds("delivered")
    missing = [i for i in ids if notified[i] == 0]
    twice = [i for i in ids if notified[i] > 1]
    assert not missing, f"{len(missing)} of {len(ids)} incidents never notified: {missing[:5]}"
    assert not twice, f"{len(twice)} incidents notified more than once: {twice[:5]}"
    assert all(delivered[i] == 1 for i in ids)
    lines = Counter(r["idempotency_key"] for r in read_sink(rig.sink))
    keys = {r.idempotency_key for r in mine}
    doubled = {k: c for k, c in lines.items() if c > 1}
    assert not doubled, f"{len(doubled)} console lines written more than once: {list(doubled.items())[:5]}"
    assert keys <= set(lines), f"{len(keys - set(lines))} notifications not in the console sink"
