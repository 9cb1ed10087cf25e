"""How `pingan drill` shows a run: the rich live table while it runs, and the what-if replay's timeline diff."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

if TYPE_CHECKING:
    from pingan.drill_runner import DrillRun
from pingan.schemas.printable import printable

CHANGE_LABEL = {"same": "=", "earlier": "EARLIER", "later": "LATER", "only_original": "GONE", "only_replay": "NEW"}


def live_table(drill: DrillRun, elapsed_s: float) -> Any:
    """A progress bar, the counts and one row per incident, at `elapsed_s` real seconds into the run."""
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table

    scenario = drill.scenario
    total = drill.real(scenario.duration_min)
    minute = elapsed_s * drill.speed / 60
    table = Table(title=f"{printable(scenario.title)}  t+{minute:.1f} / {scenario.duration_min:g} min  "
                        f"x{drill.speed:g}", expand=False)
    for column in ("inject", "incident", "state", "notified", "acks"):
        table.add_column(column)
    shown: set[str] = set()
    for tracked in drill.tracked.values():
        if tracked.incident_id in shown:
            continue
        shown.add(tracked.incident_id or tracked.inject)
        table.add_row(printable(tracked.inject), tracked.incident_id or "-", tracked.state or "-",
                      str(tracked.notified), str(tracked.acknowledged))
    opened = sum(1 for t in drill.tracked.values() if t.state and t.state != "closed")
    summary = (f"injects {drill.sent_injects}/{len(scenario.injects)} · incidents open {opened} · "
               f"notifications {sum(t.notified for t in drill.tracked.values())} · "
               f"acks {sum(t.acknowledged for t in drill.tracked.values())}")
    return Group(ProgressBar(total=max(total, 0.001), completed=min(elapsed_s, total), width=60), summary, table)


class LiveTable:
    """The runner's Progress on a terminal: starts the live table at once and prints the run's notes above it."""

    def __init__(self, drill: DrillRun) -> None:
        from rich.live import Live

        self.live = Live(live_table(drill, 0), refresh_per_second=4, transient=False)
        self.live.start()
        console = self.live.console
        drill.echo = lambda line: console.print(printable(line))

    def update(self, drill: DrillRun, elapsed_s: float) -> None:
        self.live.update(live_table(drill, elapsed_s))

    def close(self, drill: DrillRun, elapsed_s: float) -> None:
        self.live.update(live_table(drill, elapsed_s))
        self.live.stop()


def print_diff(rows: list[dict[str, Any]], echo: Callable[[str], Any] = typer.echo) -> None:
    echo(f"{'change':8} {'original':>9} {'replay':>9} {'Δ min':>7}  {'entry':14} what")
    for row in rows:
        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v:.1f}"
        detail = f"  [{row['detail']}]" if row["detail"] else ""
        echo(printable(f"{CHANGE_LABEL[row['change']]:8} {fmt(row['original_min']):>9} {fmt(row['replay_min']):>9} "
                       f"{fmt(row['delta_min']):>7}  {row['kind']:14} {row['key']}{detail}"))
