"""The surge bench's hotline SMS: E distinct events, each reported by many people in their own words.

An SMS carries no dedup key: triage correlates two texts when their automatic key is the same, i.e. the keyword
table gives the same category/subtype/hazard and the area table the same area code (schemas/adapters/
twilio_forms.py, IncidentReport.effective_dedup_key). So the bench writes an intake config (PINGAN_INTAKE_CONFIG)
whose area table names E fictional housing estates, one per event, and every report of event e names estate e and
uses one of several phrasings of that event's hazard (different words, same keyword rule), a building number and
its own sender. Reports of one event thus differ in text, sender and MessageSid, and still correlate; reports of
two events never do. verify() runs every (event, phrasing) through the real adapter to prove it before the run.
"""

import itertools
import uuid
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import yaml
from twilio.request_validator import RequestValidator

from pingan.commands import parse_sms_command
from pingan.schemas.adapters.config import load_intake_config
from pingan.schemas.adapters.twilio_forms import sms_to_item

# Estate names: 2 + 2 characters, all the same length, so none is inside another; no hazard keyword characters.
_FIRST = ("金桂", "银杏", "翠竹", "丹枫", "青松", "紫荆", "玉兰", "海棠", "锦绣", "和平", "长青", "明珠", "凤凰",
          "龙湾", "春晖", "秋实", "碧桂", "泰安", "华庭", "书香")
_SECOND = ("花园", "新村", "公寓", "家园", "雅苑", "名都", "佳苑", "华府", "山庄", "里弄")
# One hazard per event, several phrasings each; {a} is the estate, {b} the building. Every phrasing of a hazard must
# hit the same keyword rule and no other rule's longer keyword (verify() checks).
HAZARDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("fire", ("{a}{b}栋着火了，浓烟很大", "{a}{b}号楼起火，快来人", "我在{a}，{b}栋楼上在冒烟",
              "{a}{b}栋失火，有人被困", "报警：{a}{b}号楼火灾")),
    ("flood", ("{a}{b}栋地下车库积水很深", "{a}{b}号楼门口积水到膝盖", "{a}被淹了，{b}栋进水", "{a}{b}栋一楼积水")),
    ("gas", ("{a}{b}栋有燃气泄漏的味道", "{a}{b}号楼煤气味很重", "{a}{b}栋楼道燃气味道", "{a}{b}号楼疑似燃气泄漏")),
    ("crash", ("{a}门口车祸，{b}路公交", "{a}{b}号门外撞车了", "{a}附近追尾，{b}辆车", "{a}东门交通事故，{b}人受伤")),
    ("fight", ("{a}{b}栋楼下有人打架", "{a}门口斗殴，约{b}人", "{a}{b}号楼前有人打架斗殴")),
)
SAMPLE_BUILDING = 7  # digits never change the classification: no keyword or estate name contains one


@dataclass(frozen=True)
class Report:
    event: int
    form: dict[str, str]


def estates(events: int) -> list[str]:
    names = [a + b for a, b in itertools.product(_FIRST, _SECOND)]
    if events > len(names):
        raise ValueError(f"at most {len(names)} distinct events (estate names)")
    return names[:events]


def write_intake_config(path: Path, events: int) -> None:
    """The default keyword table, and an area table of one estate per event (codes in the fictional 99 province)."""
    areas = [{"code": f"9902{e:05d}", "name": name} for e, name in enumerate(estates(events))]
    path.write_text(yaml.safe_dump({"areas": {"areas": areas}}, allow_unicode=True), encoding="utf-8")


def body(event: int, report: int, names: list[str]) -> str:
    _, phrasings = HAZARDS[event % len(HAZARDS)]
    return phrasings[report % len(phrasings)].format(a=names[event], b=1 + (report * 7 + event) % 30)


def reports(n: int, events: int, run: str) -> list[Report]:
    """n reports round-robin over the events (report i is about event i % events), each with its own sender."""
    names = estates(events)
    out = []
    for i in range(n):
        event, k = i % events, i // events
        form = {
            "MessageSid": f"SM{run}{i:024d}"[:34], "AccountSid": "AC" + "0" * 32, "From": f"+86139{i:08d}",
            "To": "+8612345", "Body": body(event, k, names), "NumMedia": "0", "SmsStatus": "received",
        }
        out.append(Report(event, form))
    return out


def verify(config_path: Path, events: int) -> dict[str, int]:
    """Every phrasing of every event through the real SMS adapter: one dedup key per event, none shared, none a
    command. Returns how many phrasings and keys were checked."""
    config = load_intake_config(config_path)
    names = estates(events)
    keys: dict[str, int] = {}
    checked = 0
    for event in range(events):
        _, phrasings = HAZARDS[event % len(HAZARDS)]
        mine = set()
        for k in range(len(phrasings)):
            text = phrasings[k].format(a=names[event], b=SAMPLE_BUILDING)
            if parse_sms_command(text) is not None:
                raise ValueError(f"{text!r} would be read as a command")
            outcome = sms_to_item({"MessageSid": "SMx", "From": "+8613900000000", "Body": text},
                                  config.sms_keywords, config.areas)
            if outcome.item is None or outcome.item.report is None:
                raise ValueError(f"{text!r} is not a report")
            report = outcome.item.report
            if report.location is None or report.location.area_name != names[event]:
                raise ValueError(f"{text!r} is not placed in {names[event]}")
            mine.add(report.effective_dedup_key())
            checked += 1
        if len(mine) != 1:
            raise ValueError(f"event {event}: its phrasings give {len(mine)} dedup keys")
        key = mine.pop()
        if key in keys:
            raise ValueError(f"events {keys[key]} and {event} share a dedup key")
        keys[key] = event
    return {"phrasings_checked": checked, "distinct_keys": len(keys)}


def signed_requests(items: list[Report], url: str, token: str) -> list[tuple[bytes, bytes]]:
    """(form body, extra header lines) per report, signed as Twilio signs a webhook: done before the clock starts."""
    validator = RequestValidator(token)
    out = []
    for item in items:
        signature = validator.compute_signature(url, item.form)
        out.append((urlencode(item.form).encode(),
                    f"X-Twilio-Signature: {signature}\r\nI-Twilio-Idempotency-Token: {uuid.uuid4()}\r\n".encode()))
    return out


def spread(items: list[Report]) -> Counter[int]:
    return Counter(item.event for item in items)
