"""Releases over HTTP (issue 17) on the real API app and store (tests/integration/access_rig.py: the shipped plans
and directory, one account and token per role): a grade II typhoon's alert, update and all-clear, drafted by the
public information officer and approved by the commander; the drafter's own approval and a publication without
approval refused and logged; the actor always the caller; the log verifies."""

from collections.abc import Iterator
from pathlib import Path

import pytest

from pingan.handlers.access.permissions import Role
from pingan.handlers.audit.log_chain import verify_chain
from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from tests.fixtures.twilio_server import FakeTwilio
from tests.integration.access_rig import PEOPLE, PLANS, Rig, pump

BOTH = "xiang-yun"  # an account holding public_information and commander: drafts, and may approve others' only


@pytest.fixture
def rig(tmp_path: Path, db_url: str) -> Iterator[Rig]:
    twilio = FakeTwilio().start()
    r = Rig(tmp_path, db_url, twilio)
    r.identity.add_user(PLANS.directory, BOTH, ["public_information", "commander"], "a-long-enough-password",
                        "cli:tests")
    r.both = r.identity.create_token(BOTH, ["public_information", "commander"], "cli:tests")[1]  # type: ignore
    yield r
    r.close()
    twilio.stop()


def typhoon(rig: Rig) -> str:
    accepted = rig.store.accept(IntakeItem(report=IncidentReport(
        category="natural_disaster", subtype="meteorological", hazard="typhoon", grade="II", title="台风“海葵”",
        dedup_key="typhoon-http", location={"area_name": "唐家湾镇", "area_code": "440402"})), "raw")
    pump(rig.store)
    found = rig.store.resolve_incident_id(accepted.incident_id)
    assert found and rig.store.response_plan(found) == "typhoon"
    return found


def test_alert_update_and_all_clear_over_http_with_four_eyes(rig: Rig) -> None:
    client = rig.client()
    pio, commander, viewer = rig.bearer(Role.public_information), rig.bearer(Role.commander), rig.bearer(Role.viewer)
    both = {"Authorization": f"Bearer {rig.both}"}  # type: ignore[attr-defined]
    incident = typhoon(rig)

    assert client.post(f"/v1/incidents/{incident}/releases", json={}, headers=viewer).status_code == 403
    bad = client.post(f"/v1/incidents/{incident}/releases", json={"by": "huang-liping"}, headers=pio)
    assert bad.status_code == 422 and "by" in bad.json()["error"]
    assert client.post(f"/v1/incidents/{incident}/releases", json={"channels": ["fax"]},
                       headers=pio).status_code == 422

    # The drafter cannot approve their own release: refused (403) and logged.
    own = client.post(f"/v1/incidents/{incident}/releases", json={}, headers=both)
    assert own.status_code == 201, own.text
    own_id = own.json()["release"]["id"]
    selfie = client.post(f"/v1/releases/{own_id}/approve", json={}, headers=both)
    assert selfie.status_code == 403 and "four eyes" in selfie.json()["detail"]
    assert client.post(f"/v1/releases/{own_id}/withdraw", json={"reason": "重复"}, headers=both).status_code == 200

    drafted = client.post(f"/v1/incidents/{incident}/releases", json={}, headers=pio)
    assert drafted.status_code == 201
    first = drafted.json()["release"]
    assert first["kind"] == "alert" and first["drafted_by"] == PEOPLE[Role.public_information]
    assert drafted.json()["actions"][0]["kind"] == "release_drafted"

    # Publishing without approval is refused (409) and logged.
    early = client.post(f"/v1/releases/{first['id']}/publish", json={}, headers=pio)
    assert early.status_code == 409 and "only an approved release" in early.json()["detail"]
    refused = [a for a in client.get(f"/v1/incidents/{incident}", headers=commander).json()["timeline"]
               if a["kind"] == "refused"]
    assert [a["actor"] for a in refused] == [BOTH, PEOPLE[Role.public_information]]
    assert "four eyes" in refused[0]["details"]["reason"] and refused[0]["details"]["release"] == own_id

    approved = client.post(f"/v1/releases/{first['id']}/approve", json={"revision": 1}, headers=commander)
    assert approved.status_code == 200 and approved.json()["release"]["approved_by"] == PEOPLE[Role.commander]
    published = client.post(f"/v1/releases/{first['id']}/publish", json={"revision": 1}, headers=pio).json()
    assert published["release"]["state"] == "published" and published["release"]["cap_identifier"]
    assert [a["kind"] for a in published["actions"]] == ["release_published", "task_done"]

    update = client.post(f"/v1/incidents/{incident}/releases", json={}, headers=pio).json()["release"]
    assert update["kind"] == "update" and update["references"] == [first["id"]]
    texts = {"headline": {"zh": "台风“海葵”最新情况", "en": "Typhoon Haikui: latest"},
             "description": {"zh": "全镇已开放 12 处避护场所。", "en": "12 shelters are open."}}
    edited = client.patch(f"/v1/releases/{update['id']}", json={"texts": texts}, headers=pio)
    assert edited.status_code == 200 and edited.json()["release"]["revision"] == 2
    stale = client.post(f"/v1/releases/{update['id']}/approve", json={"revision": 1}, headers=commander)
    assert stale.status_code == 409 and "revision" in stale.json()["detail"]
    assert client.post(f"/v1/releases/{update['id']}/approve", json={"revision": 2},
                       headers=commander).status_code == 200
    out = client.post(f"/v1/releases/{update['id']}/publish", headers=pio).json()["release"]
    assert out["kind"] == "update" and out["references"] == [first["id"]]
    assert out["texts"]["headline"]["zh"] == "台风“海葵”最新情况"

    end = client.post(f"/v1/incidents/{incident}/releases", json={"all_clear": True}, headers=pio).json()["release"]
    rejected = client.post(f"/v1/releases/{end['id']}/reject", json={"reason": "还有积水路段未清理"},
                           headers=commander)
    assert rejected.status_code == 200 and rejected.json()["release"]["state"] == "rejected"
    client.post(f"/v1/releases/{end['id']}/edit", json={"channels": ["cap", "webhook"]}, headers=pio)
    client.post(f"/v1/releases/{end['id']}/approve", headers=commander)
    ended = client.post(f"/v1/releases/{end['id']}/publish", headers=commander).json()["release"]
    assert ended["kind"] == "all_clear" and ended["references"] == [first["id"], update["id"]]

    listed = client.get(f"/v1/incidents/{incident}/releases", headers=viewer)
    assert [r["state"] for r in listed.json()] == ["withdrawn", "published", "published", "published"]
    assert client.get(f"/v1/releases/{first['id']}", headers=viewer).json()["published_by"] == PEOPLE[
        Role.public_information]
    assert client.get("/v1/releases/nope", headers=viewer).status_code == 404
    liaison = client.get(f"/v1/releases/{first['id']}", headers=rig.bearer(Role.department_liaison))
    assert liaison.status_code in (200, 404)  # 404 unless the typhoon level involves the liaison's department

    timeline = rig.store.timeline(incident)
    approvals = [(a.actor, a.details["auth"]) for a in timeline if a.kind.value == "release_approved"]
    assert approvals == [(PEOPLE[Role.commander], "token")] * 3
    checked, broken = verify_chain(rig.store.iter_log())
    assert broken is None and checked > 0
