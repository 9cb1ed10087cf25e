"""`pingan drill run SCENARIO`: replay a scripted incident through a running stack's intake, faster than real time;
`pingan drill replay --from-log ID --plans DIR`: what a changed plan set would have done with a past incident.

The drill's incidents run on its own clock (--speed, registered with the run), so it runs against a plain `pingan up`
and the stack's real incidents keep real time meanwhile.
Every inject is an exercise (reports: status exercise, source drill; CAP: <status>
Exercise), so the notifier records every message in the sandbox (<data dir>/sandbox.log) and sends none, unless
the run is registered with --live-participants and the recipient is one of the scenario's participants.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime

drill_app = typer.Typer(help="Drills (演练): scripted incidents replayed through the live system, scored.",
                        no_args_is_help=True)


def _tokens() -> dict[str, str]:
    """Intake tokens of sources api, cap and alertmanager (the injects): PINGAN_INTAKE_TOKENS, then
    <data dir>/intake-tokens.json."""
    tokens: dict[str, str] = {}
    path = Path(os.environ.get("PINGAN_DATA_DIR") or "var") / "intake-tokens.json"
    with contextlib.suppress(OSError, ValueError, AttributeError):
        # Strings only: the file also holds the tokens' bindings ("senders", web/intake_tokens.py).
        tokens.update({k: v for k, v in json.loads(path.read_text()).items() if isinstance(v, str)})
    for part in (os.environ.get("PINGAN_INTAKE_TOKENS") or "").split(","):
        key, _, value = part.partition("=")
        if value.strip():  # source[:name]=token[|binding…]: the bearer token is before the first '|'
            tokens[key.strip()] = value.split("|")[0].strip()
    for key, value in list(tokens.items()):  # a named token (cap:nws) carries its source's injects if no other does
        tokens.setdefault(key.partition(":")[0], value)
    if "api" not in tokens:
        raise typer.BadParameter(f"no api intake token: set PINGAN_INTAKE_TOKENS or start the stack so {path} exists")
    return tokens


@drill_app.command("run")
def run(
    scenario_path: Annotated[Path, typer.Argument(metavar="SCENARIO", help="Drill scenario YAML", exists=True,
                                                  dir_okay=False)],
    speed: Annotated[float, typer.Option(min=0.01, help="Plan minutes per real minute for this drill's incidents "
                                         "(the stack's real incidents keep real time)")] = 60.0,
    report: Annotated[Path | None, typer.Option(help="Write the HTML report here")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the scores as JSON here")] = None,
    url: Annotated[str | None, typer.Option(help="The stack's URL; default http://127.0.0.1:$PINGAN_HTTP_PORT")]
    = None,
    token: Annotated[str | None, typer.Option(
        envvar="PINGAN_TOKEN", help="A drill coordinator's personal API token (pingan tokens create --person P "
        "--role drill_coordinator); it registers the run and plays the responders")] = None,
    lang: Annotated[str, typer.Option(help="Report language: zh or en")] = "zh",
    live_participants: Annotated[bool, typer.Option(
        "--live-participants", help="Really message the scenario's listed participants (no one else: the notifier "
        "refuses and logs any other recipient); default: every message to the sandbox")] = False,
) -> None:
    """Replay SCENARIO through the stack's intake, simulate the responders, score it, write the reports."""
    from pingan.drill_intake import twilio_signer
    from pingan.drill_runner import DrillRefused, DrillRun, stack_problem
    from pingan.handlers.drills.scenario import ScenarioError, read_scenario

    try:
        scenario = read_scenario(scenario_path)
    except ScenarioError as exc:  # file:line:col: message, one a line
        typer.echo(str(exc), err=True)
        raise typer.Exit(2) from None
    base = url or f"http://127.0.0.1:{os.environ.get('PINGAN_HTTP_PORT', '8080')}"
    problem = stack_problem(base)
    if problem is not None:
        typer.echo(f"the stack at {base} does not answer /healthz ({problem}); start it with pingan up", err=True)
        raise typer.Exit(1)
    if not token:
        raise typer.BadParameter("a drill needs a drill coordinator's personal token: pingan tokens create --person P "
                                 "--role drill_coordinator, then --token or PINGAN_TOKEN", param_hint="--token")
    # SMS and voice injects are signed as Twilio signs them: with the stack's auth token, over its public URL.
    signer = twilio_signer(os.environ.get("PINGAN_TWILIO_AUTH_TOKEN"), os.environ.get("PINGAN_PUBLIC_URL") or base)
    # Runner notes quote injects (titles, texts): runtime.echo escapes their control characters.
    drill = DrillRun(scenario, scenario_path.parent, base, _tokens(), speed, echo=runtime.echo,
                     live=live_participants, person_token=token, twilio=signer)
    runtime.echo(f"drill {drill.run_id}: {scenario.title} — {len(scenario.injects)} injects over "
                 f"{scenario.duration_min:g} plan minutes ≈ {drill.real(scenario.duration_min):.0f} s at x{speed:g}")
    try:
        if sys.stdout.isatty():
            from pingan.cli.drill_view import LiveTable

            drill.run(progress=LiveTable(drill))
        else:
            drill.run()
    except DrillRefused as exc:
        raise typer.BadParameter(str(exc)) from None
    results = drill.results()
    if json_out:
        json_out.write_text(json.dumps(results, ensure_ascii=False, indent=2), encoding="utf-8")
    if report:
        from pingan.handlers.drills.report import render_html

        report.write_text(render_html(results, lang="en" if lang.startswith("en") else "zh"), encoding="utf-8")
    score = results["score"]
    typer.echo(f"score {score['value']:g}/100: {score['checks_met']}/{score['checks_scored']} checks met, "
               f"{score['failures']} failures" + (" (interrupted: partial)" if drill.interrupted else ""))


@drill_app.command("replay")
def replay(
    from_log: Annotated[str, typer.Option("--from-log", metavar="INCIDENT_ID", help="A recorded incident (any "
                                          "status) in this environment's database")],
    plans: Annotated[Path, typer.Option(help="The changed plan set to replay against", exists=True, file_okay=False)],
    speed: Annotated[float, typer.Option(min=0.01, help="Plan minutes per real minute for the replay")] = 60.0,
    recorded_speed: Annotated[float, typer.Option(min=0.01, help="The time scale the incident was recorded at "
                                                  "(1 for a real incident; a drill's --speed for a drill)")] = 1.0,
    watch_min: Annotated[float | None, typer.Option(help="Plan minutes to watch after the last input; default: "
                                                    "as long as the original timeline, plus 2")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the diff as JSON here")] = None,
    keep: Annotated[Path | None, typer.Option(help="Keep the replay stack's files (logs, database) here")] = None,
) -> None:
    """Re-run a past incident's inputs and commands in exercise mode against PLANS; print the timeline diff."""
    from pingan.cli.drill_view import print_diff
    from pingan.cli.runtime import fail, store
    from pingan.drill_replay import IncidentNotFound
    from pingan.drill_replay import replay as run_replay
    from pingan.drill_runner import DrillRefused
    from pingan.handlers.drills.replay import NothingToReplay

    try:
        result = run_replay(store(), from_log, plans, speed, recorded_speed, watch_min, keep, echo=runtime.echo)
    except IncidentNotFound as exc:
        fail(str(exc))
    except (NothingToReplay, DrillRefused) as exc:
        raise typer.BadParameter(str(exc)) from None
    if json_out:
        json_out.write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    print_diff(result["diff"])
    typer.echo(f"{result['changed']} of {len(result['diff'])} entries differ (replay incident "
               f"{result['replay_incident_id']}, exercise, sandboxed)")
