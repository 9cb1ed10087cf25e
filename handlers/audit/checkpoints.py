"""Witnessed heads of the log: signed checkpoints, and what they say about the log as it is now.

The hash chain alone shows any change in the middle of the log, but not at its end: deleting the last entries, or
rewriting the last one and recomputing its hash, leaves a chain that verifies. So the worker signs the head (sequence
and hash) at an interval with a key kept outside the database and appends it to a checkpoint file (and, if set,
sends it to a witness). Against those, the log must still reach every witnessed sequence with the witnessed hash:
  - a log that ends before a witnessed sequence lost its tail (TRUNCATED);
  - a different hash at a witnessed sequence means that entry, or one before it, was rewritten and the chain
    recomputed (REWRITTEN), narrowed down to the entries after the last checkpoint that still matches.
Pure: the caller reads the log and the checkpoint file.
"""

import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from pydantic import Field

from pingan.handlers.audit.log_chain import GENESIS_HASH, canonical_time, verify_chain
from pingan.schemas.action import Action
from pingan.schemas.common import Model, UtcDatetime

VERSION = "pingan-checkpoint-v1"


class Checkpoint(Model):
    """One witnessed head of the log. `signature` is HMAC-SHA256 over the other fields with the checkpoint key."""

    seq: int = Field(ge=0)
    hash: str = Field(pattern=r"^[0-9a-f]{64}$")
    at: UtcDatetime
    key_id: str = Field(min_length=1, max_length=64, description="Which key signed it: sha256(key)[:12]")
    signature: str = Field(pattern=r"^[0-9a-f]{64}$")


def key_id(key: bytes) -> str:
    return hashlib.sha256(key).hexdigest()[:12]


def _message(seq: int, head_hash: str, at: datetime) -> bytes:
    return f"{VERSION}|{seq}|{head_hash}|{canonical_time(at)}".encode()


def sign(seq: int, head_hash: str, at: datetime, key: bytes) -> Checkpoint:
    digest = hmac.new(key, _message(seq, head_hash, at), hashlib.sha256).hexdigest()
    return Checkpoint(seq=seq, hash=head_hash, at=at, key_id=key_id(key), signature=digest)


def genuine(checkpoint: Checkpoint, key: bytes) -> bool:
    expected = hmac.new(key, _message(checkpoint.seq, checkpoint.hash, checkpoint.at), hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, checkpoint.signature)


@dataclass(frozen=True)
class Finding:
    kind: str  # TRUNCATED, REWRITTEN, FORGED, BROKEN
    message: str


@dataclass(frozen=True)
class WitnessReport:
    entries: int  # entries in the log as it is
    head_seq: int
    head_hash: str
    checkpoints: int  # genuine checkpoints compared
    findings: list[Finding]

    @property
    def ok(self) -> bool:
        return not self.findings


def check(log: Iterable[Action], checkpoints: Iterable[Checkpoint], key: bytes | None) -> WitnessReport:
    """Compare the log with the checkpoints. `key` None: signatures are not checked (said in the findings)."""
    witnessed = sorted(checkpoints, key=lambda c: (c.seq, c.at))
    findings: list[Finding] = []
    genuine_ones: list[Checkpoint] = []
    for cp in witnessed:
        if key is not None and not genuine(cp, key):
            findings.append(Finding("FORGED", f"checkpoint of seq {cp.seq} at {canonical_time(cp.at)} has a bad "
                                              f"signature (forged, or signed with key {cp.key_id}, not this one)"))
        else:
            genuine_ones.append(cp)
    wanted = {cp.seq for cp in genuine_ones}
    seen: dict[int, str] = {0: GENESIS_HASH}
    head_seq, head_hash = 0, GENESIS_HASH

    def remember(actions: Iterable[Action]) -> Iterable[Action]:
        nonlocal head_seq, head_hash
        for action in actions:
            if action.seq in wanted:
                seen[action.seq] = action.hash
            head_seq, head_hash = action.seq, action.hash
            yield action

    entries, broken = verify_chain(remember(log))
    if broken is not None:
        findings.append(Finding("BROKEN", f"seq {broken.seq}: {broken.reason}"))
    last_good, rewritten = 0, False
    for cp in genuine_ones:
        stored = seen.get(cp.seq)
        if cp.seq > head_seq or stored is None or rewritten:
            continue  # beyond the end (below), or past a break the chain verdict already names
        if stored != cp.hash:
            # Every later checkpoint differs too once the chain is recomputed: the first says where to look.
            findings.append(Finding("REWRITTEN", f"seq {cp.seq} does not have the hash its checkpoint of "
                                                 f"{canonical_time(cp.at)} witnessed: an entry in seq "
                                                 f"{last_good + 1}..{cp.seq} was rewritten and the chain recomputed"))
            rewritten = True
        else:
            last_good = cp.seq
    beyond = [cp for cp in genuine_ones if cp.seq > head_seq]
    if beyond and broken is None:
        latest = max(beyond, key=lambda c: c.seq)
        findings.append(Finding("TRUNCATED", f"the log ends at seq {head_seq}, but a checkpoint of "
                                             f"{canonical_time(latest.at)} witnessed seq {latest.seq}: "
                                             f"{latest.seq - head_seq} entries were removed from its tail"))
    return WitnessReport(entries, head_seq, head_hash, len(genuine_ones), findings)
