"""Intake tokens: several per source, each with a name and what it may speak for (issue 14, finding 4).

One shared CAP token let any agency send a Cancel under another's <sender> and close its incident. Now:

    PINGAN_INTAKE_TOKENS="api=T0,cap:nws=T1|KSTO@NWS.NOAA.GOV|KSEW@NWS.NOAA.GOV,cap:cma=T2|12379@cma.gov.cn,
                          alertmanager:prod=T3|https://am.prod.example:9093,alertmanager:lab=T4"

An entry is `source[:name]=token[|binding|binding…]`. Commas separate entries (CAP forbids commas in <sender>).
- cap: the bindings are the <sender> values the token may use; `*` is any sender. A CAP token WITHOUT bindings may
  use no sender: every message is 403 until it lists them (the safe reading of the old single-token form; `cap=T|*`
  keeps the old behaviour on purpose). Follow-ups (Update, Cancel) apply only to the same sender's messages whatever
  the token: triage decides that (handlers/incidents/triage.py).
- alertmanager: the name is the source's namespace: its alerts' dedup keys are `am:<name>:<fingerprint>`, so a
  resolve closes only what the same binding opened (the single form `alertmanager=T` keeps the old keys,
  `am:<fingerprint>`, so incidents opened before still close). The bindings, if any, are the `externalURL` values
  its webhooks may carry (an HA pair shares one token and one external URL); none means any.
- api, metrics: one token each, no bindings.

The generated file `<data dir>/intake-tokens.json` keeps its old shape (`{"cap": "…", …}`, which `pingan drill` and
older tools read) with the bindings beside it, `"senders": {"cap": ["*"]}`: the token generated for a box with no
configuration may use any sender, written there so it can be narrowed. A file from before bindings has none, so its
CAP token may use no sender until one is added (README: the migration).
"""

import json
import logging
import os
import re
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pingan.handlers.incidents.triage import follow_up_refusal
from pingan.schemas.events import IntakeItem
from pingan.store.message_keys import MessageKeys
from pingan.store.repository import Store

log = logging.getLogger("pingan.intake")
BEARER_SOURCES = ("api", "alertmanager", "cap")
METRICS = "metrics"  # the scraper's token for the API's /metrics: it reaches nothing else
BOUND = {"cap": "sender", "alertmanager": "externalURL"}  # the sources whose tokens say what they speak for
ANY = "*"
TOKEN_FILE = "intake-tokens.json"
SENDERS = "senders"  # the file's key for the bindings, beside the tokens
_NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")


@dataclass(frozen=True)
class IntakeToken:
    source: str
    name: str  # the source itself for the single-token form (`cap=T`), else its own (`cap:nws=T`)
    token: str = field(repr=False)
    senders: tuple[str, ...] = ()  # cap: <sender> values; alertmanager: externalURL values; `*`: any

    @property
    def key(self) -> str:
        """How it is listed: `cap` for the single form, `cap:nws` for a named one."""
        return self.source if self.name == self.source else f"{self.source}:{self.name}"

    @property
    def single(self) -> bool:
        return self.name == self.source

    def may_use(self, value: str) -> bool:
        if ANY in self.senders or value in self.senders:
            return True
        # Alertmanager: a token that lists no external URL may carry any (its name is its namespace already).
        return self.source == "alertmanager" and not self.senders


class IntakeTokens(dict[str, str]):
    """Every intake token by key (`api`, `cap`, `cap:nws`…), as the plain mapping it was (so `tokens["api"]` and
    `tokens.values()` still work), plus what each one may speak for (`find`)."""

    def __init__(self, entries: Iterable[IntakeToken] = ()) -> None:
        listed = list(entries)
        super().__init__((e.key, e.token) for e in listed)
        self.entries: dict[str, IntakeToken] = {e.key: e for e in listed}

    @classmethod
    def of(cls, tokens: Mapping[str, str]) -> "IntakeTokens":
        """A plain mapping (tests, embedding, the drill replay's private stack) is one token per source that may
        use any sender, as before bindings existed."""
        if isinstance(tokens, IntakeTokens):
            return tokens
        entries = []
        for key, token in tokens.items():
            source, _, name = key.partition(":")
            entries.append(IntakeToken(source, name or source, token, (ANY,) if source in BOUND else ()))
        return cls(entries)

    def find(self, source: str, given: str) -> IntakeToken | None:
        """The token of `source` that `given` is, compared in constant time against each."""
        found = None
        for entry in self.entries.values():
            if entry.source == source and secrets.compare_digest(given.encode(), entry.token.encode()):
                found = entry
        return found


def parse_entries(spec: str, where: str = "PINGAN_INTAKE_TOKENS") -> list[IntakeToken]:
    """`source[:name]=token[|binding…]`, comma-separated; ValueError naming the entry that is wrong."""
    out: list[IntakeToken] = []
    for raw in spec.split(","):
        if not raw.strip():
            continue
        left, _, right = raw.partition("=")
        token, *bindings = right.strip().split("|")
        out.append(_entry(left.strip(), token.strip(), [b.strip() for b in bindings], where, raw.strip()))
    return out


def _entry(key: str, token: str, bindings: list[str], where: str, raw: str) -> IntakeToken:
    source, colon, name = key.partition(":")
    shown = raw.split("=", 1)[0]  # never the token itself in an error
    if not token:
        raise ValueError(f"{where}: {shown!r} is not source[:name]=token[|binding…]")
    if colon and (not _NAME.fullmatch(name) or name == source):
        raise ValueError(f"{where}: {shown!r}: a token's name is 1-64 of A-Z a-z 0-9 _ . - and not its source")
    if bindings and source not in BOUND:
        raise ValueError(f"{where}: {shown!r}: only cap and alertmanager tokens list what they speak for")
    if any(not b for b in bindings):
        raise ValueError(f"{where}: {shown!r}: an empty {BOUND.get(source, 'binding')} after '|'")
    return IntakeToken(source, name if colon else source, token, tuple(dict.fromkeys(bindings)))


def binding_refusal(token: IntakeToken, items: list[IntakeItem]) -> dict[str, Any] | None:
    """The 403 body when `token` may not speak for an item's CAP <sender> or Alertmanager externalURL, else None."""
    if token.source not in BOUND:
        return None
    label, field_name = ("cap_sender", "alert.sender") if token.source == "cap" else ("am_external_url", "externalURL")
    for item in items:
        value = item.report.labels.get(label, "")
        if not token.may_use(value):
            allowed = ", ".join(token.senders) or "nothing"
            how = f"PINGAN_INTAKE_TOKENS={token.key}=…|{value or BOUND[token.source]}"
            return {"error": f"{field_name}: intake token {token.key!r} may not use {BOUND[token.source]} "
                             f"{value!r} (it may use: {allowed}); bind it, e.g. {how}",
                    "field": field_name, "value": value, "token": token.key}
    return None


def follow_up_conflict(store: Store, items: list[IntakeItem]) -> dict[str, Any] | None:
    """The 409 body when an Update or Cancel names a message of another sender already known to the store, else None.
    Triage makes the same decision for whatever gets past this (the referenced message not triaged yet, a feed)."""
    for item in items:
        if not item.references:
            continue
        candidate = MessageKeys(store).incident_for(item.references, item.report.status.value)
        if (refusal := follow_up_refusal(item.kind, item.report, candidate)) is not None:
            return {"error": f"alert.references: {refusal}", "field": "alert.references",
                    "value": item.report.labels.get("cap_references", "")}
    return None


def load_tokens(configured: str | None, metrics_token: str | None, data_dir: Path) -> IntakeTokens:
    """Configured tokens win; a source with none configured gets a generated one, kept in the data dir (mode 0600),
    where a file may also hold named tokens of such a source, with their bindings."""
    entries = {e.key: e for e in parse_entries(configured or "")}
    if metrics_token:
        entries[METRICS] = IntakeToken(METRICS, METRICS, metrics_token)
    configured_sources = {e.source for e in entries.values()}
    missing = [s for s in (*BEARER_SOURCES, METRICS) if s not in configured_sources]
    if missing:
        path = data_dir / TOKEN_FILE
        stored = _read_token_file(path)
        raw = stored.get(SENDERS)
        senders: dict[str, list[str]] = dict(raw) if isinstance(raw, dict) else {}
        changed = False
        for source in missing:
            if source not in stored:
                stored[source] = secrets.token_urlsafe(24)
                if source == "cap":  # generated for a box with no configuration: any sender, written to be narrowed
                    senders[source] = [ANY]
                changed = True
        if senders:
            stored[SENDERS] = senders
        if changed:
            _write_token_file(path, stored)
        for key, token in stored.items():
            source = key.partition(":")[0]
            if key != SENDERS and source in missing and isinstance(token, str):
                entries[key] = _entry(key, token, [str(s) for s in senders.get(key, [])], str(path), key)
    for entry in entries.values():
        if entry.source == "cap" and not entry.senders:
            log.warning("intake token %s may use no CAP <sender>: every CAP message it brings is refused (403) until "
                        "it lists them, e.g. PINGAN_INTAKE_TOKENS=%s=…|SENDER (README: intake tokens)",
                        entry.key, entry.key)
    return IntakeTokens(entries.values())


def read_tokens(configured: str | None, data_dir: Path) -> IntakeTokens:
    """The intake tokens load_tokens would serve, with their bindings, read only: nothing is generated or written.
    For `pingan intake test --token`; a token the API would generate on its first start is listed with the binding
    it would get (`cap`: any sender), its secret unknown (empty)."""
    entries = {e.key: e for e in parse_entries(configured or "")}
    configured_sources = {e.source for e in entries.values()}
    missing = [s for s in BEARER_SOURCES if s not in configured_sources]
    path = data_dir / TOKEN_FILE
    stored = _read_token_file(path) if missing else {}
    raw = stored.get(SENDERS)
    senders: dict[str, list[str]] = dict(raw) if isinstance(raw, dict) else {}
    for source in missing:
        if source not in stored:
            entries[source] = IntakeToken(source, source, "", (ANY,) if source == "cap" else ())
    for key, token in stored.items():
        if key != SENDERS and key.partition(":")[0] in missing and isinstance(token, str):
            entries[key] = _entry(key, token, [str(s) for s in senders.get(key, [])], str(path), key)
    return IntakeTokens(entries.values())


def _read_token_file(path: Path) -> dict[str, object]:
    try:
        return dict(json.loads(path.read_text()))
    except FileNotFoundError:
        return {}


def _write_token_file(path: Path, tokens: Mapping[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(tokens, out, indent=2)
    os.replace(tmp, path)
