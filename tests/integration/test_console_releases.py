"""The console's release page (issue 17) on a real store and the shipped plans, the signed-in person given by
overriding web.auth.principal as in test_console_pages: forms per role, the drafter's own approval refused and
logged, edit → approve → publish by the signed-in people, CSRF."""

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote

import pytest

from pingan.handlers.access.permissions import Role
from pingan.schemas.events import IntakeItem
from pingan.schemas.incident import IncidentReport
from pingan.store import releases as release_store
from pingan.web.auth import Principal
from tests.integration.test_console_pages import Console, pump

PIO = Principal("xiang-yun", frozenset({Role.public_information, Role.commander}), "session")
COMMANDER = Principal("huang-liping", frozenset({Role.commander}), "session")
VIEWER = Principal("chen-jianhua", frozenset({Role.viewer}), "session")


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[Console]:
    c = Console(tmp_path)
    yield c
    c.client.close()
    c.store.close()


def typhoon(console: Console) -> str:
    accepted = console.store.accept(IntakeItem(report=IncidentReport(
        category="natural_disaster", subtype="meteorological", hazard="typhoon", grade="II", title="台风“海葵”",
        dedup_key="typhoon-console")), "raw")
    pump(console.store)
    found = console.store.resolve_incident_id(accepted.incident_id)
    assert found
    return found


def test_release_page_draft_four_eyes_edit_approve_publish(ui: Console) -> None:
    console = ui
    incident = typhoon(console)
    page = f"/console/releases?incident={incident}"

    console.person = VIEWER
    seen = console.client.get(page).text
    assert "信息发布" in seen and "btn-draft" not in seen
    assert 'id="link-releases"' in console.client.get(f"/console/incidents/{incident}").text
    csrf = console.csrf(page)
    assert console.client.post("/console/releases/draft", data={"csrf": csrf, "incident": incident}).status_code == 403

    console.person = PIO
    csrf = console.csrf(page)
    assert console.client.post("/console/releases/draft", data={"csrf": "forged", "incident": incident}
                               ).status_code == 403
    done = console.client.post("/console/releases/draft", data={"csrf": csrf, "incident": incident},
                               follow_redirects=False)
    assert done.status_code == 303 and "error" not in done.headers["location"]
    [release] = release_store.list_for_incident(console.store, incident)
    shown = console.client.get(page).text
    assert "btn-draft" in shown and "btn-approve" in shown and "二级响应" in shown

    own = console.client.post(f"/console/releases/{release.id}/approve",
                              data={"csrf": csrf, "revision": "1"}, follow_redirects=False)
    assert "four eyes" in unquote(own.headers["location"])
    refused = [a for a in console.store.timeline(incident) if a.kind.value == "refused"]
    assert refused and refused[-1].actor == "xiang-yun" and refused[-1].details["via"] == "console"

    edited = console.client.post(f"/console/releases/{release.id}/edit", data={
        "csrf": csrf, "headline_zh": "台风“海葵”防御指引", "headline_en": "Typhoon Haikui: what to do",
        "description_zh": "请远离海边。", "description_en": "Keep away from the shore.", "channel": ["cap"]},
        follow_redirects=False)
    assert "error" not in edited.headers["location"]
    after = release_store.get(console.store, release.id)
    assert after is not None and after.revision == 2 and after.texts.headline.zh == "台风“海葵”防御指引"
    assert [c.value for c in after.channels] == ["cap"]

    console.person = COMMANDER
    csrf = console.csrf(page)
    stale = console.client.post(f"/console/releases/{release.id}/approve", data={"csrf": csrf, "revision": "1"},
                                follow_redirects=False)
    assert "revision" in unquote(stale.headers["location"])
    console.client.post(f"/console/releases/{release.id}/approve", data={"csrf": csrf, "revision": "2"})
    assert "btn-publish" in console.client.get(page).text
    console.client.post(f"/console/releases/{release.id}/publish", data={"csrf": csrf, "revision": "2"})
    out = release_store.get(console.store, release.id)
    assert out is not None and out.state.value == "published" and out.published_by == "huang-liping"
    actors = [(a.kind.value, a.actor) for a in console.store.timeline(incident) if a.kind.value.startswith("release_")]
    assert actors == [("release_drafted", "xiang-yun"), ("release_edited", "xiang-yun"),
                      ("release_approved", "huang-liping"), ("release_published", "huang-liping")]
    assert console.client.get("/console/releases?incident=INC-NOSUCHONE").status_code == 404


def test_release_page_shows_who_was_asked_to_approve_and_when(ui: Console) -> None:
    console = ui
    incident = typhoon(console)
    page = f"/console/releases?incident={incident}"
    console.person = PIO
    done = console.client.post("/console/releases/draft", data={"csrf": console.csrf(page), "incident": incident},
                               follow_redirects=False)
    assert done.status_code == 303 and "error" not in done.headers["location"]
    [release] = release_store.list_for_incident(console.store, incident)
    seen = console.client.get(page).text
    section = seen[seen.index(f'id="release-{release.id}"'):]
    asked = section[section.index('class="asked"'):section.index("</dd>", section.index('class="asked"'))]
    # The grade II commander (黄丽萍, huang-liping) was asked, on the console, SMS and e-mail: not yet sent.
    assert "已送审" in asked and "黄丽萍" in asked and "twilio_sms: intended" in asked and "console: intended" in asked
    assert "向云" not in asked  # the drafter
