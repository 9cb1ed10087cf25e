"""The duty console's pages against a real store and the shipped plans, with the signed-in person given by overriding
web.auth.principal (identity is tested on its own): board order and scoping, the incident page and its buttons per
role, CSRF, the commands' actor, regrade through triage, the shift handover in the log, the live event fan-out."""

import asyncio
import re
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi import Request
from fastapi.testclient import TestClient

from pingan.handlers.access.permissions import Role
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport
from pingan.settings import Settings
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage
from pingan.web import auth
from pingan.web.app import create_api
from pingan.web.auth import Principal
from pingan.web.console.live import Broadcaster, stream

WINDOW = timedelta(hours=1)
PLANS = load_plans(PLANS_DIR)
OFFICER = Principal("lin-xiaodong", frozenset({Role.duty_officer}), "session")
COMMANDER = Principal("huang-liping", frozenset({Role.commander}), "session")
VIEWER = Principal("chen-jianhua", frozenset({Role.viewer}), "session")
FIRE_LIAISON = Principal("su-peng", frozenset({Role.department_liaison}), "session", frozenset({"fire"}))


def pump(store: Store) -> None:
    """Run every accepted event through triage and the response, as the worker would."""
    for row in store.unpublished():
        store.mark_published([row.event_id])
        for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
            response_stage(store, PLANS, event, time_scale=1.0)


def report(store: Store, grade: str, title: str, category: str = "accident_disaster", subtype: str = "fire") -> str:
    accepted = store.accept(IntakeItem(report=IncidentReport(category=category, subtype=subtype, grade=grade,
                                                             title=title, dedup_key=title)), "raw")
    pump(store)
    found = store.resolve_incident_id(accepted.incident_id)
    assert found
    return found


class Console:
    def __init__(self, tmp_path: Path) -> None:
        self.store = Store(f"sqlite:///{tmp_path / 'console.db'}")
        settings = Settings(data_dir=tmp_path, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None)
        self.api = create_api(settings, self.store, tokens={"api": "test-token"})
        self.person = OFFICER
        self.api.dependency_overrides[auth.principal] = lambda request: self._person(request)
        self.client = TestClient(self.api)

    def _person(self, _: Request) -> Principal:
        return self.person

    def csrf(self, path: str = "/console/") -> str:
        html = self.client.get(path).text
        found = re.search(r'name="csrf" value="([^"]+)"', html)
        assert found, html[:500]
        return found.group(1)


@pytest.fixture
def console(tmp_path: Path):  # type: ignore[no-untyped-def]
    c = Console(tmp_path)
    yield c
    c.client.close()
    c.store.close()


def test_board_sorts_by_grade_then_age_with_plan_and_countdown(console: Console) -> None:
    low = report(console.store, "IV", "垃圾桶起火")
    high = report(console.store, "II", "厂房起火")
    page = console.client.get("/console/")
    assert page.status_code == 200
    html = page.text
    assert html.index(high) < html.index(low)
    assert 'class="grade-II alerting"' in html  # a grade II nobody has opened yet alerts
    assert "title=\"building-fire\"" in html and "data-due=" in html
    assert "/console/events" in html and "http://" not in html.split("<main>")[0]


def test_incident_page_ack_by_the_signed_in_person(console: Console) -> None:
    incident = report(console.store, "II", "仓库起火")
    page = console.client.get(f"/console/incidents/{incident}").text
    assert "btn-ack" in page and "总指挥" in page  # the command chain's roles
    assert "/close" not in page  # a duty officer may not close
    csrf = console.csrf(f"/console/incidents/{incident}")
    done = console.client.post(f"/console/incidents/{incident}/ack", data={"csrf": csrf}, follow_redirects=False)
    assert done.status_code == 303
    ack = [a for a in console.store.timeline(incident) if a.kind.value == "acknowledged"]
    assert ack and ack[0].actor == "lin-xiaodong" and ack[0].details["via"] == "console"
    again = console.client.post(f"/console/incidents/{incident}/ack", data={"csrf": csrf})
    assert 'class="info"' in again.text  # a second acknowledgement changes nothing, and says so
    assert len([a for a in console.store.timeline(incident) if a.kind.value == "acknowledged"]) == 1
    # Opening it ended the alert on the board.
    assert "alerting" not in console.client.get("/console/board/rows").text


def test_forms_need_the_csrf_token_and_the_permission(console: Console) -> None:
    incident = report(console.store, "III", "车库起火")
    assert console.client.post(f"/console/incidents/{incident}/ack", data={"csrf": "forged"}).status_code == 403
    console.person = VIEWER
    csrf = console.csrf()
    page = console.client.get(f"/console/incidents/{incident}").text
    assert "btn-ack" not in page and "/note" not in page
    refused = console.client.post(f"/console/incidents/{incident}/ack", data={"csrf": csrf})
    assert refused.status_code == 403
    assert not [a for a in console.store.timeline(incident) if a.kind.value == "acknowledged"]


def test_note_and_close_with_second_factor(console: Console) -> None:
    incident = report(console.store, "III", "餐馆起火")
    csrf = console.csrf()
    console.client.post(f"/console/incidents/{incident}/note", data={"csrf": csrf, "text": "消防已到场"})
    notes = [a for a in console.store.timeline(incident) if a.kind.value == "note"]
    assert notes[0].actor == "lin-xiaodong" and notes[0].details["text"] == "消防已到场"
    console.person = COMMANDER
    page = console.client.get(f"/console/incidents/{incident}").text
    assert "/close" in page and "/regrade" in page
    asked = console.client.post(f"/console/incidents/{incident}/close",
                                data={"csrf": csrf, "reason": "火已扑灭", "confirm": "yes"}, follow_redirects=False)
    assert asked.status_code == 303 and "/console/second-factor" in asked.headers["location"]
    console.person = Principal("huang-liping", frozenset({Role.commander}), "session", second_factor=True)
    unconfirmed = console.client.post(f"/console/incidents/{incident}/close", data={"csrf": csrf, "reason": "x"},
                                      follow_redirects=False)
    assert "error=console.reason_and_confirm" in unconfirmed.headers["location"]
    console.client.post(f"/console/incidents/{incident}/close", data={"csrf": csrf, "reason": "火已扑灭",
                                                                       "confirm": "yes"})
    closed = [a for a in console.store.timeline(incident) if a.kind.value == "closed"]
    assert closed[0].actor == "huang-liping" and closed[0].details["reason"] == "火已扑灭"


def test_regrade_goes_through_triage_and_replans(console: Console) -> None:
    incident = report(console.store, "III", "商场起火")
    console.person = Principal("huang-liping", frozenset({Role.commander}), "session", second_factor=True)
    csrf = console.csrf()
    console.client.post(f"/console/incidents/{incident}/regrade",
                        data={"csrf": csrf, "grade": "II", "reason": "有人员被困", "confirm": "yes"})
    pump(console.store)
    kinds = [(a.kind.value, a.actor) for a in console.store.timeline(incident)]
    assert ("regraded", "huang-liping") in kinds and ("grade_changed", "system:triage") in kinds
    found = console.store.get_incident(incident)
    assert found is not None and found.grade.value == "II"


def test_department_liaison_sees_only_their_incidents(console: Console) -> None:
    fire = report(console.store, "III", "住宅起火")
    cluster = report(console.store, "III", "学校聚集性发热", "public_health", "infectious_disease")
    console.person = FIRE_LIAISON
    board = console.client.get("/console/").text
    assert fire in board and cluster not in board
    assert console.client.get(f"/console/incidents/{cluster}").status_code == 404
    assert console.client.get(f"/console/incidents/{fire}").status_code == 200


def test_language_switch_and_other_pages(console: Console) -> None:
    report(console.store, "III", "仓库起火")
    assert "值班台" in console.client.get("/console/").text
    csrf = console.csrf()
    console.client.post("/console/lang", data={"csrf": csrf, "lang": "en", "next": "/console/"})
    board = console.client.get("/console/").text
    assert "Next escalation" in board and '<html lang="en">' in board
    for path, word in [("/console/oncall", "On call"), ("/console/plans", "building-fire"),
                       ("/console/plans/building-fire", "Notify steps"), ("/console/plans/coverage", "Coverage"),
                       ("/console/plans/test?category=accident_disaster&subtype=fire&grade=II", "building-fire"),
                       ("/console/drills", "Drills"), ("/console/log", "hash chain unbroken"),
                       ("/console/shift", "Shift handover")]:
        page = console.client.get(path)
        assert page.status_code == 200 and word in page.text, path


def test_shift_handover_is_logged_with_the_open_incidents(console: Console) -> None:
    incident = report(console.store, "III", "仓库起火")
    csrf = console.csrf("/console/shift")
    console.client.post("/console/shift", data={"csrf": csrf, "to": "ye-qing", "note": "夜间注意台风"})
    entries = [a for a in console.store.iter_log() if str(a.kind) == "shift_handover"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry.actor == "lin-xiaodong" and entry.incident_id.startswith("shift:")
    assert entry.details["to"] == "ye-qing" and entry.details["open_incidents"] == [incident]
    assert "夜间注意台风" in console.client.get("/console/shift").text


def test_sign_in_page_without_a_session(console: Console) -> None:
    def nobody(_: Request) -> Principal:
        from fastapi import HTTPException

        raise HTTPException(401, "no session")

    console.api.dependency_overrides[auth.principal] = nobody
    board = console.client.get("/console/", follow_redirects=False)
    assert board.status_code == 303 and board.headers["location"].startswith("/console/sign-in")
    page = console.client.get("/console/sign-in").text
    assert 'action="/auth/sign-in"' in page and 'name="person"' in page and 'name="password"' in page


async def test_live_events_reach_only_the_boards_that_may_see_them(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'live.db'}")
    report(store, "IV", "旧事件")
    departments = {"fire": ["fire"], "health": ["health"]}
    live = Broadcaster(store, lambda ids: {i: departments["fire"] for i in ids}, poll_s=0.05)

    async def never() -> bool:
        return False

    everyone = stream(live, lambda deps: True, never)
    health_only = stream(live, lambda deps: "health" in deps, never)
    assert "hello" in await everyone.__anext__()
    assert "hello" in await health_only.__anext__()
    await asyncio.sleep(0.2)  # the poller has read the head; only newer entries are news
    incident = await asyncio.to_thread(report, store, "II", "新的火灾")
    update = await asyncio.wait_for(everyone.__anext__(), 2)
    assert incident in update and '"alert": ["' + incident in update
    with pytest.raises(TimeoutError):
        await asyncio.wait_for(health_only.__anext__(), 0.5)
    await everyone.aclose()
    await health_only.aclose()
    assert not live.boards
    store.close()


def test_drill_runs_listed_and_ended_by_a_coordinator(console: Console) -> None:
    from pingan.store.drills import DrillStore

    DrillStore(console.store).register("run42", "台风演练", live=False, participants=["lin-xiaodong"])
    page = console.client.get("/console/drills").text
    assert "run42" in page and "/drills/run42/end" not in page  # a duty officer may not end it
    console.person = Principal("zhou-haibo", frozenset({Role.drill_coordinator}), "session")
    csrf = console.csrf("/console/drills")
    page = console.client.get("/console/drills").text
    assert "/drills/run42/end" in page and 'name="scenario"' in page and "typhoon" in page
    refused = console.client.post("/console/drills", data={"csrf": csrf, "scenario": "no-such"},
                                  follow_redirects=False)
    assert "error=console.drill_unknown_scenario" in refused.headers["location"]
    console.client.post("/console/drills/run42/end", data={"csrf": csrf})
    ended = DrillStore(console.store).get("run42")
    assert ended is not None and ended.ended_at is not None
    assert console.client.get("/console/drills/run42/report").status_code == 404  # no report written for it


def test_second_factor_page_posts_to_auth(console: Console) -> None:
    page = console.client.get("/console/second-factor?next=/console/incidents/INC-X&error=code").text
    assert 'action="/auth/second-factor"' in page and 'name="code"' in page and "验证码错误或已过期" in page
    assert 'value="/console/incidents/INC-X"' in page


def test_board_query_on_both_databases(store: Store) -> None:
    """The board's three queries (places read from the body by the database itself), SQLite and PostgreSQL."""
    from pingan.store.console import board, chain_head, entries_after, latest_seq

    low = report(store, "IV", "垃圾桶起火")
    high = report(store, "I", "化工厂爆炸", "accident_disaster", "hazardous_chemicals")
    accepted = store.accept(IntakeItem(report=IncidentReport(
        category="accident_disaster", subtype="fire", grade="III", title="无地点", dedup_key="nowhere",
        location={"area_code": "440402100001"})), "raw")
    pump(store)
    coded = store.resolve_incident_id(accepted.incident_id)
    rows = board(store.engine)
    assert [r.id for r in rows] == [high, coded, low]
    assert rows[0].plan_id == "hazchem-leak" and rows[0].next_due is not None and rows[0].next_due.tzinfo
    assert rows[1].area == "440402100001" and rows[2].area == ""
    head = chain_head(store.engine)
    assert head is not None and head[0] == latest_seq(store.engine)
    assert {e.incident_id for e in entries_after(store.engine, 0)} >= {low, high}


def test_a_console_drill_has_its_own_speed(console: Console) -> None:
    """The form's speed is the drill's clock (issue 14): validated, and never the stack's time scale."""
    console.person = Principal("zhou-haibo", frozenset({Role.drill_coordinator}), "session")
    csrf = console.csrf("/console/drills")
    page = console.client.get("/console/drills").text
    assert 'name="speed"' in page and 'value="60"' in page and "PINGAN_ESCALATION_TIME_SCALE" not in page
    for bad in ("0", "-5", "abc", "nan", "100000"):
        refused = console.client.post("/console/drills", data={"csrf": csrf, "scenario": "typhoon", "speed": bad},
                                      follow_redirects=False)
        assert "error=console.drill_bad_speed" in refused.headers["location"], bad
