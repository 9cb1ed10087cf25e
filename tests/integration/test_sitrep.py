"""`pingan sitrep` on a known week (issue 17 part 3): incidents, log entries, ledger rows written into a real store
(SQLite and PostgreSQL), the report run as the CLI, and every figure of `--format json` checked against values worked
out by hand below (written literally). The HTML renders in headless Chromium with its charts; the PDF has pages.

The week (Asia/Shanghai): 2026-11-23 00:00 to 11-30 00:00 local = 11-22T16:00Z to 11-29T16:00Z; the previous week
11-15T16:00Z to 11-22T16:00Z; the report is made at 11-30T02:00Z. The plan `sitrep-fire` (accident_disaster/fire):
grade III: step s1 console at 0 with a 5-minute acknowledgement window, step s2 an SMS roll call at 0; task
report-city by 30 min. Grade II: step s1 console at 0, 3-minute window; tasks report-city by 20, evacuate by 60.
So the first-notification target is minute 0 and the acknowledgement target minute 5 (III) or 3 (II), each + 1 min.

This week (real):
  A fire III 唐家湾 11-23T01:00Z, 3 reports, closed at +120: notified +1.0, ack +4.0, roll call p1 and p2 told
    (p2's SMS failed: not told), p1 confirmed (p3 confirmed too but was never called); report-city at +20.5 (met).
  B fire II 唐家湾 11-24T02:00Z, closed at +180: notified +0.1, ack +10 (target 3+1: missed); report-city at +30
    (late), evacuate never (missed: closed at 180).
  C weather IV 淇澳 11-25T10:30Z, 2 reports, open, no plan: nothing sent.
  D fire III, no area, 11-27T23:00Z, acknowledged: notified +3.0 (missed), ack +6.0 (met, 5+1), roll call p1 told,
    nobody confirmed; report-city never (missed); SMS to p1 sent, to p2 still intended.
  G fire III 唐家湾 11-29T15:50Z (local 23:50), closed at +10: notified +0.5, never acknowledged (missed: closed
    after 5+1), report-city not due (closed before 30).
  M fire III 唐家湾 11-23T01:02Z, merged into A (labels merged_into): counted as A, only its console line counts.
  E (exercise) and F (test): left out, their notifications and releases too. H (after the week) counts nowhere.
  Releases: A's alert published at +15 and its update at +60, B's alert at +45, D's only a draft.
Previous week: P1 fire III 唐家湾 closed, P2 infectious disease IV 淇澳 closed, P3 fire IV 金鼎 still open.

Placed by triage (issue 18; location.placement, whatever the free-text area name says): A, G, P1 (and M, E) in
唐家社区 grid 1, B in its grid 2, C in 淇澳社区 grid 5, P2 in 淇澳社区 only, P3 in 唐乐社区 grid 1; D nowhere. So per
community (incidents this/previous, reports this/previous): 唐家 3/1, 5/1 (A 3 + B 1 + G 1); 淇澳 1/1, 2/1; 唐乐
0/1, 0/1; unplaced (D) 1/0, 1/0. Per grid of those three: 唐家 1 2/1, 4/1; 唐家 2 1/0, 1/0; 淇澳 5 1/0, 2/0;
唐乐 1 0/1, 0/1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from sqlalchemy import update

from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.area_view import district_nodes, path_to
from pingan.schemas.areas import PlacedArea, Placement
from pingan.schemas.incident import Incident, Location
from pingan.schemas.notification import Channel, Notification, Recipient
from pingan.schemas.release import Release
from pingan.store.engine import write_tx
from pingan.store.incidents import incident_row
from pingan.store.ledger import ledger_row
from pingan.store.log import append_actions
from pingan.store.releases import save as save_release
from pingan.store.repository import Store
from pingan.store.tables import incidents, notifications

PLAN = {
    "id": "sitrep-fire", "title": {"zh": "测试火灾预案", "en": "Test fire plan"}, "version": 1, "owner": "fire",
    "status": "approved", "applies_to": {"category": "accident_disaster", "subtypes": ["fire"]},
    "levels": [
        {"grade": "III", "response_level": "三级响应", "command": {"commander": {"person": "p1"}},
         "notify": [
             {"id": "s1", "targets": [{"person": "p1"}], "channels": ["console"], "delay_min": 0,
              "ack_timeout_min": 5, "template": {"zh": "{title}", "en": "{title}"}},
             {"id": "s2", "targets": [{"person": "p1"}, {"person": "p2"}], "channels": ["sms"], "delay_min": 0,
              "roll_call": True, "template": {"zh": "点名 {title}", "en": "roll call {title}"}}],
         "tasks": [{"id": "report-city", "title": {"zh": "向市报告"}, "owner": {"person": "p1"},
                    "deadline_min": 30}]},
        {"grade": "II", "response_level": "二级响应", "command": {"commander": {"person": "p1"}},
         "notify": [{"id": "s1", "targets": [{"person": "p1"}], "channels": ["console"], "delay_min": 0,
                     "ack_timeout_min": 3, "template": {"zh": "{title}", "en": "{title}"}}],
         "tasks": [{"id": "report-city", "title": {"zh": "向市报告"}, "owner": {"person": "p1"}, "deadline_min": 20},
                   {"id": "evacuate", "title": {"zh": "疏散"}, "owner": {"person": "p1"}, "deadline_min": 60}]},
    ],
}
TASKS = {"III": [{"id": "report-city", "deadline_min": 30}],
         "II": [{"id": "report-city", "deadline_min": 20}, {"id": "evacuate", "deadline_min": 60}]}
AS_OF = "2026-11-30T02:00:00+00:00"
TANGJIA_1, QIAO, TANGLE = "440402100001001", "440402100009", "440402100002"  # 唐家社区 grid 1, 淇澳社区, 唐乐社区


def _t(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def placed_in(code: str | None) -> Placement | None:
    """Where triage would have placed a report in that area of the shipped district file: its whole path."""
    if code is None:
        return None
    nodes = {n.code: n for n in district_nodes(AREAS_FILE)[1]}
    path = [PlacedArea(code=n.code, level=n.level, name_zh=n.name_zh, name_en=n.name_en) for n in path_to(nodes, code)]
    return Placement(path=path, method="area_code", evidence=f"test: {code}")


class Week:
    """Writes incidents, their log entries and ledger rows through the store's own row builders."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.drafts: list[ActionDraft] = []
        self.ledger: list[tuple[Notification, str]] = []
        self.releases: list[Release] = []

    def incident(self, iid: str, at: str, grade: str, *, category: str = "accident_disaster", subtype: str = "fire",
                 area: str | None = None, reports: int = 1, state: str = "open", status: str = "actual",
                 labels: dict[str, str] | None = None, placed: str | None = None) -> datetime:
        received = _t(at)
        incident = Incident(id=iid, dedup_key=f"k-{iid}", received_at=received, category=category, subtype=subtype,
                            grade=grade, title=f"事件 {iid}", state=state, status=status, report_count=reports,
                            location=Location(area_name=area, placement=placed_in(placed)), labels=labels or {})
        with write_tx(self.store.engine) as conn:
            conn.execute(incidents.insert(), [incident_row(incident)])
        self.log(iid, received, ActionKind.created, "system:triage")
        return received

    def log(self, iid: str, at: datetime, kind: ActionKind, actor: str = "system:test", plan: bool = False,
            **details: object) -> None:
        self.drafts.append(ActionDraft(incident_id=iid, at=at, actor=actor, kind=kind, details=details,
                                       plan_id="sitrep-fire" if plan else None, plan_version=1 if plan else None))

    def activate(self, iid: str, at: datetime, level: str) -> None:
        self.log(iid, at, ActionKind.plan_activated, "system:response", plan=True, level=level, tasks=TASKS[level])

    def sent(self, iid: str, at: datetime, step: str, who: str, channel: Channel, state: str,
             logged: bool = True) -> None:
        n = Notification(idempotency_key=f"n-{iid}-{step}-{who}", incident_id=iid, plan_id="sitrep-fire",
                         plan_version=1, step=step, recipient=Recipient(id=who, name=who, channel=channel,
                                                                        address="+8613800000000"),
                         channel=channel, text="t", created_at=at)
        self.ledger.append((n, state))
        if logged:
            kind = ActionKind.failed if state == "failed" else ActionKind.notified
            self.log(iid, at, kind, "system:notifier", plan=True, step=step, recipient=who, channel=channel.value)

    def release(self, iid: str, n: int, drafted: datetime, published: datetime | None, kind: str = "alert",
                status: str = "actual") -> None:
        texts = {"headline": {"zh": "发布"}, "description": {"zh": "内容"}}
        self.releases.append(Release(
            id=f"REL-{iid}-{n}", incident_id=iid, kind=kind, state="published" if published else "draft",
            status=status, category="accident_disaster", subtype="fire", grade="III", texts=texts, drafted_by="wu-min",
            drafted_at=drafted, published_at=published, published_by="huang-liping" if published else None,
            cap_identifier=f"cap-{iid}-{n}" if published else None))

    def commit(self) -> None:
        with write_tx(self.store.engine) as conn:
            for release in self.releases:
                save_release(conn, release)
            append_actions(conn, sorted(self.drafts, key=lambda d: d.at))
            for n, state in self.ledger:
                conn.execute(notifications.insert(), [ledger_row(n, n.created_at)])
                conn.execute(update(notifications).where(notifications.c.idempotency_key == n.idempotency_key)
                             .values(state=state))


def build_week(store: Store) -> None:
    w = Week(store)
    m = timedelta(minutes=1)
    sms, console = Channel.twilio_sms, Channel.console
    # A
    a = w.incident("INC-A", "2026-11-23T01:00:00", "III", area="唐家湾", reports=3, state="closed", placed=TANGJIA_1)
    w.activate("INC-A", a + 0.5 * m, "III")
    w.sent("INC-A", a + 1 * m, "s1", "p1", console, "delivered")
    w.sent("INC-A", a + 1 * m, "s2", "p1", sms, "delivered")
    w.sent("INC-A", a + 1 * m, "s2", "p2", sms, "failed")
    w.log("INC-A", a + 4 * m, ActionKind.acknowledged, "p1")
    w.log("INC-A", a + 5 * m, ActionKind.confirmed, "p1", step="s2")
    w.log("INC-A", a + 6 * m, ActionKind.confirmed, "p3", step="s2")
    w.log("INC-A", a + 21 * m, ActionKind.task_done, "p1", task="report-city", level="III")
    w.log("INC-A", a + 120 * m, ActionKind.closed, "p1", reason="out")
    # M: a second incident of A's fire, merged into A by the duty officer (its 2 reports are in A's 3)
    mm = w.incident("INC-M", "2026-11-23T01:02:00", "III", area="唐家湾", reports=2, state="closed",
                    labels={"merged_into": "INC-A"}, placed=TANGJIA_1)
    w.activate("INC-M", mm, "III")
    w.sent("INC-M", mm + 1 * m, "s1", "p1", console, "delivered")
    w.log("INC-M", mm + 30 * m, ActionKind.closed, "p1", reason="same fire", merged_into="INC-A")
    w.release("INC-A", 1, a + 5 * m, a + 15 * m)
    w.release("INC-A", 2, a + 50 * m, a + 60 * m, kind="update")
    # B
    b = w.incident("INC-B", "2026-11-24T02:00:00", "II", area="唐家湾", state="closed",
                   placed=TANGJIA_1[:-1] + "2")
    w.activate("INC-B", b, "II")
    w.sent("INC-B", b + 0.1 * m, "s1", "p1", console, "delivered")
    w.log("INC-B", b + 10 * m, ActionKind.acknowledged, "p1")
    w.log("INC-B", b + 30 * m, ActionKind.task_done, "p1", task="report-city", level="II")
    w.log("INC-B", b + 180 * m, ActionKind.closed, "p1", reason="out")
    w.release("INC-B", 1, b + 40 * m, b + 45 * m)
    # C: no plan
    c = w.incident("INC-C", "2026-11-25T10:30:00", "IV", category="natural_disaster", subtype="meteorological",
                   area="淇澳", reports=2, placed=QIAO + "005")
    w.log("INC-C", c, ActionKind.no_plan, "system:response", reason="none")
    # D
    d = w.incident("INC-D", "2026-11-27T23:00:00", "III", state="acknowledged")
    w.activate("INC-D", d, "III")
    w.sent("INC-D", d + 3 * m, "s1", "p1", console, "delivered")
    w.sent("INC-D", d + 3 * m, "s2", "p1", sms, "sent")
    w.sent("INC-D", d + 3 * m, "s2", "p2", sms, "intended", logged=False)
    w.log("INC-D", d + 6 * m, ActionKind.acknowledged, "p1")
    w.release("INC-D", 1, d + 10 * m, None)  # a draft: not published
    # G
    g = w.incident("INC-G", "2026-11-29T15:50:00", "III", area="唐家湾", state="closed", placed=TANGJIA_1)
    w.activate("INC-G", g, "III")
    w.sent("INC-G", g + 0.5 * m, "s1", "p1", console, "delivered")
    w.log("INC-G", g + 10 * m, ActionKind.closed, "p1", reason="false alarm")
    # Exercise and test traffic, and one incident after the week
    e = w.incident("INC-E", "2026-11-26T03:00:00", "III", area="唐家湾", status="exercise", reports=4,
                   placed=TANGJIA_1)
    w.activate("INC-E", e, "III")
    w.sent("INC-E", e, "s1", "p1", console, "delivered")
    w.release("INC-E", 1, e, e + 5 * m, status="exercise")
    w.incident("INC-F", "2026-11-28T03:00:00", "II", status="test")
    w.incident("INC-H", "2026-11-30T00:00:00", "II", area="唐家湾")
    # The previous week, and one before it
    w.incident("INC-P1", "2026-11-16T05:00:00", "III", area="唐家湾", state="closed", placed=TANGJIA_1)
    w.incident("INC-P2", "2026-11-20T08:00:00", "IV", category="public_health", subtype="infectious_disease",
               area="淇澳", state="closed", placed=QIAO)
    w.incident("INC-P3", "2026-11-18T00:00:00", "IV", area="金鼎", placed=TANGLE + "001")
    w.incident("INC-OLD", "2026-11-10T00:00:00", "IV", area="金鼎", state="closed")
    w.commit()


def known_week(db_url: str, tmp_path: Path) -> Path:
    """The known week written into the database at `db_url`; the plans dir with its plan."""
    store = Store(db_url)
    try:
        build_week(store)
    finally:
        store.close()
    plans = tmp_path / "plans"
    plans.mkdir()
    (plans / "sitrep-fire.yaml").write_text(yaml.safe_dump(PLAN, allow_unicode=True))
    return plans


@pytest.fixture
def week(db_url: str, tmp_path: Path) -> dict[str, str]:
    plans = known_week(db_url, tmp_path)
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(PINGAN_DATABASE_URL=db_url, PINGAN_PLANS_DIR=str(plans), PINGAN_DATA_DIR=str(tmp_path / "var"),
               PINGAN_TIMEZONE="Asia/Shanghai")
    return env


def sitrep(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "sitrep", "--period", "week",
                           "--since", "2026-11-23", "--as-of", AS_OF, *args], env=env, capture_output=True,
                          timeout=180, check=False)


def rows(items: list[dict[str, object]]) -> list[tuple[object, ...]]:
    return [(r["key"], r["current"], r["previous"]) for r in items]


def test_every_figure_of_a_known_week(week: dict[str, str]) -> None:
    done = sitrep(week, "--format", "json")
    assert done.returncode == 0, done.stderr.decode()
    r = json.loads(done.stdout)
    assert r["generated_at"] == "2026-11-30T02:00:00Z"
    assert r["period"] == {"kind": "week", "start": "2026-11-22T16:00:00Z", "end": "2026-11-29T16:00:00Z",
                           "previous_start": "2026-11-15T16:00:00Z", "previous_end": "2026-11-22T16:00:00Z",
                           "timezone": "Asia/Shanghai"}
    assert (r["incidents"], r["incidents_previous"], r["reports"], r["exercise_excluded"]) == (5, 3, 8, 2)
    assert r["merged_excluded"] == 1
    by = r["by"]
    assert rows(by["category"]) == [("accident_disaster", 4, 2), ("natural_disaster", 1, 0), ("public_health", 0, 1)]
    assert rows(by["subtype"]) == [("fire", 4, 2), ("meteorological", 1, 0), ("infectious_disease", 0, 1)]
    assert rows(by["grade"]) == [("III", 3, 1), ("IV", 1, 2), ("II", 1, 0)]
    assert rows(by["area"]) == [("唐家湾", 3, 1), ("淇澳", 1, 1), ("-", 1, 0), ("金鼎", 0, 1)]
    assert rows(by["state"]) == [("closed", 3, 2), ("open", 1, 1), ("acknowledged", 1, 0)]

    times = {t["measure"]: {k: v for k, v in t.items() if k not in ("measure", "target_rule")}
             for t in r["response_times"]}
    # first notification: 0.1, 0.5, 1.0, 3.0 -> median (0.5 + 1.0) / 2, p90 the ceil(3.6) = 4th; D late (3.0 > 0+1)
    assert times["first_notification"] == {"incidents": 5, "reached": 4, "median_min": 0.75, "p90_min": 3.0,
                                           "with_target": 4, "met": 3, "missed": 1}
    # first acknowledgement: 4, 6, 10 -> median 6, p90 the 3rd; B late (10 > 3+1), G never and closed at 10 > 5+1
    assert times["first_acknowledgement"] == {"incidents": 5, "reached": 3, "median_min": 6.0, "p90_min": 10.0,
                                              "with_target": 4, "met": 2, "missed": 2}
    # close: 10, 120, 180 -> median 120, p90 the 3rd; plans set no close target
    assert times["close"] == {"incidents": 5, "reached": 3, "median_min": 120.0, "p90_min": 180.0,
                              "with_target": 0, "met": 0, "missed": 0}
    assert "nearest rank" in r["percentile_definition"]

    assert r["notifications"] == [
        {"channel": "console", "intended": 5, "sent": 5, "delivered": 5, "failed": 0, "pending": 0},  # M's too
        {"channel": "twilio_sms", "intended": 4, "sent": 2, "delivered": 1, "failed": 1, "pending": 1},
    ]
    assert r["roll_call"] == {"notified": 2, "confirmed": 1, "completion": 0.5}
    assert r["tasks"] == {"total": 5, "met": 1, "late": 1, "missed": 2, "not_due": 1}
    # A's alert at +15 and update at +60, B's alert at +45; D's draft and the exercise's release do not count
    assert r["releases"] == {"available": True, "published": 3, "incidents_with_release": 2,
                             "time_to_first_release_median_min": 30.0, "time_to_first_release_p90_min": 45.0}
    assert [(i["id"], i["grade"], i["state"], i["area"], i["received_at"], i["open_hours"])
            for i in r["still_open"]] == [
        ("INC-D", "III", "acknowledged", "-", "2026-11-27T23:00:00Z", 51.0),
        ("INC-P3", "IV", "open", "金鼎", "2026-11-18T00:00:00Z", 290.0),
        ("INC-C", "IV", "open", "淇澳", "2026-11-25T10:30:00Z", 111.5),
    ]
    assert r["top_areas"] == [{"area": "唐家湾", "incidents": 3, "reports": 5},
                              {"area": "淇澳", "incidents": 1, "reports": 2},
                              {"area": "-", "incidents": 1, "reports": 1}]
    assert [(b["label"], b["current"]) for b in r["over_time"]] == [
        ("11-23", 1), ("11-24", 1), ("11-25", 1), ("11-26", 0), ("11-27", 0), ("11-28", 1), ("11-29", 1)]
    assert r["over_time"][0]["start"] == "2026-11-22T16:00:00Z"

    def counts(items: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(a["code"], a["name_zh"], a["incidents"], a["incidents_previous"], a["reports"],
                 a["reports_previous"]) for a in items]

    assert counts(r["by_community"]) == [
        ("440402100001", "唐家社区", 3, 1, 5, 1), ("440402100009", "淇澳社区", 1, 1, 2, 1),
        ("440402100002", "唐乐社区", 0, 1, 0, 1), ("-", None, 1, 0, 1, 0)]
    assert counts(r["by_grid"]) == [
        ("440402100001001", "唐家社区第一网格", 2, 1, 4, 1), ("440402100001002", "唐家社区第二网格", 1, 0, 1, 0),
        ("440402100009005", "淇澳社区第五网格", 1, 0, 2, 0), ("440402100002001", "唐乐社区第一网格", 0, 1, 0, 1)]
    assert [a["parent"] for a in r["by_grid"]] == ["440402100001", "440402100001", "440402100009", "440402100002"]


def test_a_day_counts_per_local_hour(week: dict[str, str]) -> None:
    done = subprocess.run([sys.executable, "-m", "pingan.cli.main", "sitrep", "--period", "day", "--since",
                           "2026-11-23", "--as-of", AS_OF, "--format", "json"], env=week, capture_output=True,
                          timeout=180, check=False)
    assert done.returncode == 0, done.stderr.decode()
    r = json.loads(done.stdout)
    assert (r["incidents"], r["incidents_previous"]) == (1, 0)
    counts = {b["label"]: b["current"] for b in r["over_time"]}
    assert len(counts) == 24 and counts["09:00"] == 1 and sum(counts.values()) == 1  # A at 09:00 local


def test_html_renders_with_charts_and_pdf_has_pages(week: dict[str, str], tmp_path: Path) -> None:
    chromium = __import__("shutil").which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed (apt-get install chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright
    from pypdf import PdfReader

    for lang, heading in (("zh", "突发事件态势研判报告"), ("en", "Situation report")):
        html = tmp_path / f"week-{lang}.html"
        done = sitrep(week, "--format", "html", "--lang", lang, "--out", str(html))
        assert done.returncode == 0, done.stderr.decode()
        text = html.read_text()
        assert "<script" not in text and "http://" not in text.replace('xmlns="http://www.w3.org/2000/svg"', "")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-dev-shm-usage"])
            try:
                page = browser.new_page()
                page.goto(html.as_uri())
                assert heading in page.locator("h1").inner_text()
                assert page.locator("svg.chart").count() == 4
                # over time: a column per day (7); categories: 2 bars each (3 rows); communities: 2 bars each (4
                # rows, the unplaced too); channels: 2 bars each (2)
                assert page.locator("svg.chart").nth(0).locator("rect").count() == 7
                assert page.locator("svg.chart").nth(1).locator("rect").count() == 6
                assert page.locator("svg.chart").nth(2).locator("rect").count() == 8
                assert page.locator("svg.chart").nth(3).locator("rect").count() == 4
                community = {"zh": "唐家社区", "en": "Tangjia Community"}[lang]
                assert community in page.locator("svg.chart").nth(2).inner_html()
                assert page.get_by_text({"zh": "唐家社区第一网格", "en": "Tangjia Community Grid 1"}[lang]).count()
                box = page.locator("svg.chart").nth(0).bounding_box()
                assert box is not None and box["width"] > 300 and box["height"] > 100
            finally:
                browser.close()
    pdf = tmp_path / "week.pdf"
    done = sitrep(week, "--format", "pdf", "--out", str(pdf))
    assert done.returncode == 0, done.stderr.decode()
    reader = PdfReader(str(pdf))
    assert len(reader.pages) >= 1
    assert "INC-D" in "".join(page.extract_text() or "" for page in reader.pages)


@pytest.mark.parametrize(("args", "message"), [
    (["--since", "last tuesday"], "--since: 'last tuesday' is not a date"),
    (["--as-of", "soon"], "--as-of: 'soon' is not a date"),
    (["--format", "pdf"], "--format pdf needs --out FILE"),
    (["--period", "year"], "'year' is not one of"),
])
def test_bad_options_are_named(tmp_path: Path, args: list[str], message: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env["PINGAN_DATA_DIR"] = str(tmp_path)
    done = subprocess.run([sys.executable, "-m", "pingan.cli.main", "sitrep", *args], env=env, capture_output=True,
                          timeout=120, check=False)
    assert done.returncode != 0 and message in done.stderr.decode(), done.stderr.decode()
    assert b"Traceback" not in done.stderr
