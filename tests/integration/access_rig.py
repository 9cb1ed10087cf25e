"""The rig the access tests share: the real API app (create_api) on a real store, the shipped plans and directory,
a local Twilio-compatible server for the second factor's SMS, one account and personal token per role, and two
incidents taken through triage and the response in-process: a building fire (its level involves the fire department)
and an infectious-disease cluster (it does not)."""

from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient

from pingan.handlers.access.permissions import Role
from pingan.handlers.plans.load import load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.events import IntakeItem, RawEvent
from pingan.schemas.incident import IncidentReport, Reporter
from pingan.settings import Settings
from pingan.store.drills import DrillStore
from pingan.store.identity import IdentityStore
from pingan.store.repository import Store
from pingan.streams.stages import response_stage, triage_stage
from pingan.web.app import create_api
from tests.fixtures.twilio_server import FakeTwilio

WINDOW = timedelta(hours=1)
PLANS = load_plans(PLANS_DIR)
PASSWORD = "a-long-enough-password"
INTAKE = {"api": "intake-api", "alertmanager": "intake-am", "cap": "intake-cap", "metrics": "scraper"}
MAX_FAILURES = 3
# One person per role (people of the shipped directory); the liaison is of the fire department.
PEOPLE: dict[Role, str] = {
    Role.viewer: "liang-guoqiang",
    Role.duty_officer: "lin-xiaodong",
    Role.commander: "huang-liping",
    Role.public_information: "wu-min",
    Role.plan_author: "xu-jing",
    Role.drill_coordinator: "ye-qing",
    Role.department_liaison: "su-peng",
    Role.admin: "zhou-haibo",
}
REPORTER_PHONE = "+12025550199"


def pump(store: Store) -> None:
    """Every accepted event through triage and the response, as the worker's agents would."""
    for row in store.unpublished():
        store.mark_published([row.event_id])
        for event in triage_stage(store, RawEvent.model_validate_json(row.payload), WINDOW).incident_events:
            response_stage(store, PLANS, event, time_scale=1.0)


def report(store: Store, title: str, category: str, subtype: str, grade: str = "IV", status: str = "actual",
           labels: dict[str, str] | None = None) -> str:
    accepted = store.accept(IntakeItem(report=IncidentReport(
        category=category, subtype=subtype, grade=grade, title=title, dedup_key=title, status=status,
        reporter=Reporter(name="市民", phone=REPORTER_PHONE), labels=labels or {})), "raw")
    pump(store)
    found = store.resolve_incident_id(accepted.incident_id)
    assert found
    return found


class Rig:
    def __init__(self, tmp_path: Path, db_url: str, twilio: FakeTwilio) -> None:
        self.twilio = twilio
        self.store = Store(db_url)
        self.settings = Settings(
            data_dir=tmp_path, heartbeat_interval_s=0, topic_prefix="", cap_feeds=None,
            twilio_account_sid=twilio.account_sid, twilio_auth_token=twilio.auth_token,
            twilio_from_number=twilio.from_number, twilio_api_base_url=twilio.base_url,
            sign_in_max_failures=MAX_FAILURES, sign_in_rate_per_minute=1000,
            # Every role's token at every intake route, from one address: far more wrong credentials a minute than
            # the per-address budget for them (issue 14) allows a real client.
            intake_unauthenticated_rate_per_minute=100_000)
        self.app = create_api(self.settings, self.store, tokens=dict(INTAKE))
        self.identity = IdentityStore(self.store.engine)
        self.tokens: dict[Role, str] = {}
        for role, person in PEOPLE.items():
            self.identity.add_user(PLANS.directory, person, [role.value], PASSWORD, "cli:tests")
            self.tokens[role] = self.identity.create_token(person, [role.value], "cli:tests")[1]
        revoked, self.revoked = self.identity.create_token(PEOPLE[Role.admin], ["admin"], "cli:tests")
        self.identity.revoke_token(revoked.id, "cli:tests")
        self.fire = report(self.store, "仓库起火", "accident_disaster", "fire")
        self.cluster = report(self.store, "学校诺如病毒聚集性疫情", "public_health", "infectious_disease")
        DrillStore(self.store).register("perm-run", "权限演练", False, [])
        self.drill_incident = report(self.store, "【演练】仓库起火", "accident_disaster", "fire", status="exercise",
                                     labels={"drill_run": "perm-run"})

    def client(self) -> TestClient:
        return TestClient(self.app)

    def bearer(self, role: Role) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def close(self) -> None:
        self.store.close()
