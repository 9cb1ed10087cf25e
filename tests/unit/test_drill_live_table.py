"""The drill's live view (rich): a progress bar, the counts and one row per incident. Rendered offline."""

from pathlib import Path

from rich.console import Console

from pingan.cli.drill_view import live_table
from pingan.drill_runner import DrillRun, Tracked
from pingan.plans import PLANS_DIR
from pingan.schemas.drill import load_scenario


def test_the_live_table_shows_injects_incidents_notifications_and_acks() -> None:
    scenario = load_scenario(Path(PLANS_DIR) / "drills" / "chemical-leak-night.yaml")
    drill = DrillRun(scenario, Path(PLANS_DIR), "http://127.0.0.1:9", {"api": "t"}, speed=120)
    drill.sent_injects = 1
    drill.tracked["leak"] = Tracked("leak", incident_id="INC-ABCDEFGHJK", notified=17, acknowledged=1, state="open")
    console = Console(record=True, width=120)
    console.print(live_table(drill, elapsed_s=8.5))  # 8.5 s at x120 = plan minute 17
    text = console.export_text()
    assert "t+17.0 / 34 min" in text and "injects 1/2" in text and "incidents open 1" in text
    assert "notifications 17" in text and "acks 1" in text
    assert "INC-ABCDEFGHJK" in text and "leak" in text
    drill.http.close()
