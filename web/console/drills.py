"""Drills started from the console: a scenario of the plans' drills/ folder run by the same runner as
`pingan drill run`, in a thread of the API process, against this stack's own intake; its HTML report is written to
<data dir>/drill-reports/<run id>.html when it ends.

The runner registers the run over HTTP as the CLI does, so the notifier's sandbox rule sees it the same way. It needs
a drill coordinator's personal token for that and for its simulated responders: the console makes one for the
coordinator who pressed start, carrying only the drill_coordinator role, and revokes it when the run ends (both are
in the log). Ending a run started here interrupts the runner (its partial report is still written); ending one
started elsewhere (the CLI) marks it ended in the store, which sends the rest of its traffic to the sandbox."""

import json
import logging
import re
import threading
from pathlib import Path
from typing import Any

from pingan.drill_intake import twilio_signer
from pingan.drill_runner import DrillRefused, DrillRun
from pingan.handlers.drills.report import render_html
from pingan.handlers.drills.scenario import ScenarioError, read_scenario
from pingan.store.drills import DrillStore
from pingan.web.intake import Intake

log = logging.getLogger(__name__)
_RUN_ID = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
DEFAULT_SPEED = 60.0  # a console drill's plan minutes per real minute unless the form says otherwise
MAX_SPEED = 3600.0  # as POST /v1/drills accepts


class ConsoleDrill(DrillRun):
    """A DrillRun that stops when asked: the runner already turns an interrupt into a partial report."""

    stop_requested = False
    token_id: str | None = None  # the personal token made for this run, revoked when it ends

    def watch(self) -> None:
        if self.stop_requested:
            raise KeyboardInterrupt
        super().watch()


class DrillRunner:
    def __init__(self, intake: Intake, identity: Any = None) -> None:
        """`identity`: the identity store (web.auth's), which makes the run's personal token."""
        self.intake = intake
        self.identity = identity
        self.settings = intake.settings
        self._runs: dict[str, ConsoleDrill] = {}
        self._lock = threading.Lock()

    @property
    def folder(self) -> Path:
        return self.settings.plans_dir / "drills"

    @property
    def report_dir(self) -> Path:
        return self.settings.data_dir / "drill-reports"

    def scenarios(self) -> list[str]:
        return sorted(p.stem for p in self.folder.glob("*.yaml")) if self.folder.is_dir() else []

    def reports(self) -> set[str]:
        return {p.stem for p in self.report_dir.glob("*.html")} if self.report_dir.is_dir() else set()

    def running(self) -> set[str]:
        with self._lock:
            return {run_id for run_id, drill in self._runs.items() if drill.ended_at is None}

    def start(self, scenario: str, live: bool, by: str, speed: str = "") -> str | None:
        """Start a run in the background at `speed` (the form's text; empty: DEFAULT_SPEED); returns a problem to
        show, or None. The speed is the drill's own clock: the stack's real incidents keep real time."""
        if scenario not in self.scenarios():
            return "console.drill_unknown_scenario"
        try:
            pace = float(speed) if speed.strip() else DEFAULT_SPEED
        except ValueError:
            pace = 0.0
        if not 0 < pace <= MAX_SPEED:  # nan fails this too
            return "console.drill_bad_speed"
        if self.identity is None:
            return "console.drill_no_identity"
        path = self.folder / f"{scenario}.yaml"
        url = f"http://{self.settings.http_host}:{self.settings.http_port}"
        try:
            script = read_scenario(path)
        except ScenarioError as exc:  # file:line:col: message
            return str(exc)
        try:
            token, secret = self.identity.create_token(by, ["drill_coordinator"], actor=by,
                                                       label=f"console drill {scenario}")
        except ValueError as exc:  # no account, disabled, or not a drill coordinator
            return str(exc)
        drill = ConsoleDrill(script, path.parent, url, self.intake.tokens,
                             pace, echo=lambda line: log.info("drill: %s", line),
                             live=live, person_token=secret,
                             twilio=twilio_signer(self.settings.twilio_auth_token, self.settings.public_url or url))
        drill.token_id = token.id
        with self._lock:
            self._runs[drill.run_id] = drill
        log.info("drill %s (%s) started from the console by %s, live=%s", drill.run_id, scenario, by, live)
        threading.Thread(target=self._run, args=(drill,), name=f"drill-{drill.run_id}", daemon=True).start()
        return None

    def _run(self, drill: ConsoleDrill) -> None:
        try:
            drill.run()
        except DrillRefused as exc:
            log.warning("drill %s refused: %s", drill.run_id, exc)
            return
        except Exception:
            log.exception("drill %s failed", drill.run_id)
            return
        finally:
            if drill.token_id and self.identity is not None:
                self.identity.revoke_token(drill.token_id, actor="system:console")
        results = drill.results()
        self.report_dir.mkdir(parents=True, exist_ok=True)
        (self.report_dir / f"{drill.run_id}.json").write_text(json.dumps(results, ensure_ascii=False, indent=2),
                                                              encoding="utf-8")
        (self.report_dir / f"{drill.run_id}.html").write_text(render_html(results, lang="zh"), encoding="utf-8")

    def end(self, run_id: str) -> None:
        with self._lock:
            drill = self._runs.get(run_id)
        if drill is not None:
            drill.stop_requested = True
        DrillStore(self.intake.store).end(run_id)

    def report(self, run_id: str) -> str | None:
        path = self.report_dir / f"{run_id}.html"
        if not _RUN_ID.match(run_id) or not path.is_file():
            return None
        return path.read_text(encoding="utf-8")
