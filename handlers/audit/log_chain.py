"""The command-chain log as a hash chain: pure functions, no storage.

Each entry's hash is sha256(prev_hash + canonical JSON of the entry's own fields), so changing, removing or
reordering any stored entry breaks every hash after it, and `verify_chain` names the first entry that fails.
"""

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pingan.schemas.action import Action, ActionDraft

GENESIS_HASH = "0" * 64
_DRAFT_FIELDS = tuple(ActionDraft.model_fields)


def canonical_time(at: datetime) -> str:
    """One spelling per instant, so that a hash can be recomputed from what the database returns."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def hashed_fields(seq: int, draft: ActionDraft) -> dict[str, Any]:
    return {
        "seq": seq,
        "incident_id": draft.incident_id,
        # Entries read back for verification keep the stored text as it is, tampered or not.
        "at": draft.at if isinstance(draft.at, str) else canonical_time(draft.at),
        "actor": draft.actor,
        "kind": getattr(draft.kind, "value", draft.kind),
        "details": draft.details,
        "plan_id": draft.plan_id,
        "plan_version": draft.plan_version,
        "idempotency_key": draft.idempotency_key,
    }


def entry_hash(prev_hash: str, fields: dict[str, Any]) -> str:
    return hashlib.sha256((prev_hash + canonical_json(fields)).encode()).hexdigest()


def chain(prev_seq: int, prev_hash: str, drafts: Iterable[ActionDraft]) -> list[Action]:
    """Give each draft its place after (prev_seq, prev_hash)."""
    actions: list[Action] = []
    for draft in drafts:
        prev_seq += 1
        digest = entry_hash(prev_hash, hashed_fields(prev_seq, draft))
        # The draft is a validated ActionDraft, and an Action is that plus three fields computed here: validating
        # it all again (a dump, then the model's checks and NUL walk) was half of each entry's cost (issue 15).
        fields = {name: getattr(draft, name) for name in _DRAFT_FIELDS}
        actions.append(Action.model_construct(**fields, seq=prev_seq, prev_hash=prev_hash, hash=digest))
        prev_hash = digest
    return actions


@dataclass(frozen=True)
class ChainBreak:
    seq: int
    reason: str


def verify_chain(actions: Iterable[Action]) -> tuple[int, ChainBreak | None]:
    """Walk the log in seq order. Returns (entries checked, the first break or None)."""
    expected_prev, expected_seq, checked = GENESIS_HASH, 1, 0
    for action in actions:
        if action.seq != expected_seq:
            return checked, ChainBreak(action.seq, f"expected seq {expected_seq}: an entry is missing or moved")
        if action.prev_hash != expected_prev:
            return checked, ChainBreak(action.seq, "prev_hash does not match the previous entry's hash")
        recomputed = entry_hash(action.prev_hash, hashed_fields(action.seq, action))
        if recomputed != action.hash:
            return checked, ChainBreak(action.seq, "content does not match its hash: the entry was changed")
        expected_prev, expected_seq, checked = action.hash, action.seq + 1, checked + 1
    return checked, None
