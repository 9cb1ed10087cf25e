"""The `pingan` command line."""

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import areas, reports, response, runtime, sitrep
from pingan.cli.cap import cap_app
from pingan.cli.drill import drill_app
from pingan.cli.intake import intake_app
from pingan.cli.plans import plans_app
from pingan.cli.release import release_app
from pingan.cli.trends import trends_app
from pingan.cli.users import tokens_app, users_app
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Source, Subtype

app = typer.Typer(help="Pingan (平安): event-driven emergency response and alerting.", no_args_is_help=True,
                  add_completion=False)
log_app = typer.Typer(help="The tamper-evident command-chain log.", no_args_is_help=True)
schema_app = typer.Typer(help="The data shapes as JSON Schema.", no_args_is_help=True)
app.add_typer(log_app, name="log")
app.add_typer(schema_app, name="schema")
app.add_typer(intake_app, name="intake")
app.add_typer(plans_app, name="plans")
app.add_typer(drill_app, name="drill")
app.add_typer(users_app, name="users")
app.add_typer(tokens_app, name="tokens")
app.add_typer(release_app, name="release")
app.add_typer(trends_app, name="trends")
app.add_typer(cap_app, name="cap")


@app.command()
def up() -> None:
    """Run the whole stack (embedded broker unless KAFKA_BOOTSTRAP_SERVERS is set, worker, HTTP API)."""
    from pingan.supervisor import run_stack

    runtime.configure_logging()
    run_stack(runtime.settings())


@app.command()
def worker() -> None:
    """Run the stream worker alone (recovery, outbox relay, faust agents) against KAFKA_BOOTSTRAP_SERVERS."""
    from pingan.streams.worker import run_worker

    runtime.configure_logging()
    run_worker(runtime.settings())


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help="Default: PINGAN_HTTP_HOST")] = None,
    port: Annotated[int | None, typer.Option(help="Default: PINGAN_HTTP_PORT")] = None,
) -> None:
    """Run the HTTP API alone."""
    import uvicorn

    from pingan.bootstrap import bootstrap
    from pingan.web.app import create_api

    runtime.configure_logging()
    services = bootstrap(runtime.settings(), with_plans=False)
    settings = services.settings
    uvicorn.run(create_api(settings, services.store, channels=services.channels), host=host or settings.http_host,
                port=port or settings.http_port, log_level="warning")


@app.command()
def report(
    category: Annotated[Category, typer.Option(help="Incident category")],
    subtype: Annotated[Subtype, typer.Option(help="Subtype within the category")],
    grade: Annotated[Grade, typer.Option(help="I (特别重大) … IV (一般)")],
    title: Annotated[str, typer.Option(help="Short title, e.g. 仓库起火")],
    description: Annotated[str, typer.Option(help="Free text")] = "",
    hazard: Annotated[str | None, typer.Option(help="Finer hazard, e.g. typhoon")] = None,
    area_code: Annotated[str | None, typer.Option(help="Administrative area code")] = None,
    area_name: Annotated[str | None, typer.Option(help="Area name")] = None,
    dedup_key: Annotated[str | None, typer.Option(help="Reports with one key join one incident")] = None,
    status: Annotated[IncidentStatus, typer.Option(help="actual, exercise or test")] = IncidentStatus.actual,
) -> None:
    """Submit one incident through the intake path; prints its id once it is stored."""
    from pydantic import ValidationError

    from pingan.schemas.incident import IncidentReport, Location
    from pingan.streams import topics

    try:
        incident_report = IncidentReport(
            source=Source.cli, status=status, category=category, subtype=subtype, grade=grade, title=title,
            description=description, hazard=hazard, dedup_key=dedup_key,
            location=Location(area_code=area_code, area_name=area_name),
        )
    except ValidationError as exc:
        runtime.fail(runtime.describe_validation(exc))
    store = runtime.store()
    accepted = store.accept(incident_report, runtime.settings().topic(topics.RAW))
    typer.echo(accepted.incident_id)


@app.command()
def timeline(incident_id: Annotated[str, typer.Argument(help="Incident id (or the id a report was given)")]) -> None:
    """Print one incident's command-chain log."""
    from pingan.store.recorded import incident_log

    log = incident_log(runtime.store(), incident_id)
    if log is None:
        runtime.fail(f"incident {incident_id!r} not found")
    if log.waiting:
        runtime.echo(f"{incident_id}: accepted, waiting for triage")
        return
    if log.incident is not None:
        incident = log.incident
        runtime.echo(f"{incident.id}  {incident.grade.value}  {incident.category.value}/{incident.subtype.value}  "
                     f"{incident.status.value}  {incident.title}")
    for action in log.actions:
        typer.echo(runtime.format_action(action))


@app.command()
def tail(
    topic: Annotated[str, typer.Argument(help="incidents.raw, incidents, notifications or actions")],
    follow: Annotated[bool, typer.Option("--follow/--no-follow", help="Keep waiting for new messages")] = True,
    max_messages: Annotated[int | None, typer.Option("--max", help="Stop after this many")] = None,
    timeout: Annotated[float | None, typer.Option(help="Stop after this many idle seconds")] = None,
) -> None:
    """Print a topic's messages from the beginning (key and JSON value); `actions` is the log, read from the store."""
    from pingan.streams.tail import tail as tail_topic

    settings = runtime.settings()
    if topic == "actions":  # the log's entries are no longer produced one by one (issue 15): the store has them all
        from pingan.store.log import follow_log

        for count, action in enumerate(follow_log(runtime.store().engine, follow, idle_timeout_s=timeout), 1):
            runtime.echo(f"log:{action.seq} {action.incident_id} {action.model_dump_json()}")
            if max_messages is not None and count >= max_messages:
                return
        return
    bootstrap = runtime.bootstrap_servers()
    for partition, offset, key, value in tail_topic(bootstrap, settings.topic(topic), from_beginning=True,
                                                    follow=follow, max_messages=max_messages, timeout_s=timeout):
        text = value.decode("utf-8", "replace") if value else ""
        key_text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
        runtime.echo(f"{partition}:{offset} {key_text} {text}")


@log_app.command("verify")
def log_verify(checkpoints: Annotated[Path | None, typer.Option(
        help="Signed checkpoint file (PINGAN_LOG_CHECKPOINT_FILE) to compare the tail with")] = None) -> None:
    """Check the whole hash chain, and with --checkpoints the tail against its witnessed heads; prints the head."""
    from pingan.handlers.audit.checkpoints import check
    from pingan.log_witness import CheckpointFileError, checkpoint_key, read_checkpoints

    settings = runtime.settings()
    try:
        witnessed = read_checkpoints(checkpoints) if checkpoints else []
    except (OSError, CheckpointFileError) as exc:
        runtime.fail(str(exc), code=2)
    key = checkpoint_key(settings)
    report = check(runtime.store().iter_log(), witnessed, key)
    head = f"head seq {report.head_seq} hash {report.head_hash}"
    if checkpoints and key is None:
        typer.echo("note: PINGAN_LOG_CHECKPOINT_KEY is not set: checkpoint signatures are not checked")
    if report.ok:
        against = f", {report.checkpoints} checkpoint(s) agree" if checkpoints else ""
        typer.echo(f"ok: {report.entries} entries, hash chain intact{against}; {head}")
        return
    for finding in report.findings:
        runtime.echo(f"{finding.kind}: {finding.message}", err=True)
    runtime.fail(f"the log does not verify ({report.entries} entries read; {head})")


@log_app.command("checkpoint")
def log_checkpoint() -> None:
    """Sign the log's head now and append it to the checkpoint file (the worker does this every interval)."""
    from pingan.log_witness import checkpoint_key, write_checkpoint

    settings = runtime.settings()
    key = checkpoint_key(settings)
    if key is None:
        runtime.fail("PINGAN_LOG_CHECKPOINT_KEY (or PINGAN_LOG_CHECKPOINT_KEY_FILE) is not set", code=2)
    checkpoint = write_checkpoint(runtime.store(), settings, key)
    typer.echo(f"checkpoint: seq {checkpoint.seq} hash {checkpoint.hash} -> {settings.log_checkpoint_path}")


@app.command("backup")
def backup_store(dest: Annotated[Path, typer.Argument(help="The backup file to write (never overwritten)")]) -> None:
    """Copy the SQLite store online, while the stack runs (PostgreSQL: pg_dump, see README)."""
    from pingan.store.backup import BackupError, backup

    try:
        copied = backup(runtime.settings().resolved_database_url, dest)
    except BackupError as exc:
        runtime.fail(str(exc), code=2)
    typer.echo(f"backup: {copied.path} ({copied.pages} pages, {copied.log_entries} log entries)")


@app.command("restore")
def restore_store(src: Annotated[Path, typer.Argument(help="A file written by `pingan backup`")],
                  force: Annotated[bool, typer.Option(help="Replace a store that has data (stop the stack first)")]
                  = False) -> None:
    """Restore the SQLite store from a backup, then verify its log; the next start resumes its unfinished work."""
    from pingan.handlers.audit.log_chain import verify_chain
    from pingan.store.backup import BackupError, restore

    try:
        copied = restore(src, runtime.settings().resolved_database_url, force)
    except BackupError as exc:
        runtime.fail(str(exc), code=2)
    checked, broken = verify_chain(runtime.store().iter_log())
    if broken is not None:
        runtime.fail(f"restored to {copied.path}, but its log is BROKEN at seq {broken.seq}: {broken.reason}")
    typer.echo(f"restored: {copied.path} ({copied.pages} pages); log ok: {checked} entries, hash chain intact")


@schema_app.command("export")
def schema_export(directory: Annotated[Path, typer.Argument(help="Where to write <model>.schema.json")]) -> None:
    """Write the JSON Schema of every public model."""
    from pingan.schemas import PUBLIC_MODELS

    directory.mkdir(parents=True, exist_ok=True)
    for name, model in PUBLIC_MODELS.items():
        path = directory / f"{name}.schema.json"
        path.write_text(json.dumps(model.model_json_schema(), ensure_ascii=False, indent=2) + "\n")
        typer.echo(str(path))


for verb in (response.ack, response.escalate, response.close, response.handover, response.task, response.oncall,
             reports.reports, reports.merge, reports.split, sitrep.sitrep, areas.areas):
    app.command()(verb)


def run() -> None:
    app()


if __name__ == "__main__":
    sys.exit(app())
