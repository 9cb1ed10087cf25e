"""`pingan release draft|edit|show|list|approve|reject|publish|withdraw`: public information releases (信息发布,
issue 17), each verb one call of pingan.releases (the service the HTTP API uses too), printed.

`--by` names the person, as `pingan plans approve --by` does: this command runs where the store is, for the duty
room's own operators; their roles are their account's (`pingan users`) and the command roles the incident's plan level
gives them. Four eyes hold here as over HTTP: the drafter or last editor never approves. A refusal exits 1 with the
reason, and is in the log.
"""

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from pingan.cli import runtime

if TYPE_CHECKING:
    from pingan.releases import Caller, ReleaseService
    from pingan.schemas.release import Release

release_app = typer.Typer(help="Public information releases (信息发布): draft, edit, approve, publish.",
                          no_args_is_help=True)

By = Annotated[str, typer.Option("--by", help="Person id of who does it (a person of the directory)")]
Revision = Annotated[int | None, typer.Option(help="The revision you read (`release show`); refused if it changed")]


def _service() -> "ReleaseService":
    from pingan.handlers.plans.load import load_plans
    from pingan.releases import ReleaseService

    settings = runtime.settings()
    return ReleaseService(runtime.store(), load_plans(settings.plans_dir), settings.cap_sender)


def _caller(by: str) -> "Caller":
    from pingan.releases import Caller, account_roles

    return Caller(by, account_roles(runtime.store(), by), {"via": "cli", "auth": "cli"})


def _run(call):  # type: ignore[no-untyped-def]
    from pingan.releases import ReleaseRefused

    try:
        return call()
    except ReleaseRefused as exc:
        runtime.fail(str(exc))


def _print(release: "Release") -> None:
    runtime.echo(f"{release.id}  {release.kind.value}  {release.state.value}  revision {release.revision}  "
                 f"{release.status.value}  grade {release.grade.value}  "
                 f"channels {','.join(c.value for c in release.channels)}")
    runtime.echo(f"  incident {release.incident_id}  plan {release.plan_id}  template {release.template_id}  "
                 f"approvers {' or '.join(release.approver_roles)}")
    steps = [("drafted", release.drafted_by, release.drafted_at), ("edited", release.edited_by, release.edited_at),
             ("approved", release.approved_by, release.approved_at),
             ("published", release.published_by, release.published_at)]
    for what, who, at in steps:
        if who:
            runtime.echo(f"  {what:<9} by {who} at {at.isoformat(timespec='seconds') if at else '-'}")
    if release.rejected_by:
        runtime.echo(f"  rejected  by {release.rejected_by}: {release.rejected_reason}")
    if release.references:
        runtime.echo(f"  references {', '.join(release.references)}")
    if release.cap_identifier:
        runtime.echo(f"  cap identifier {release.cap_identifier}")
    texts = release.texts
    for name, text in (("headline", texts.headline), ("description", texts.description),
                       ("instruction", texts.instruction)):
        if text is None:
            continue
        runtime.echo(f"  {name} zh: {text.zh}")
        if text.en:
            runtime.echo(f"  {name} en: {text.en}")
    if release.areas:
        runtime.echo(f"  areas {'; '.join(a.name or ','.join(g.value for g in a.geocodes) for a in release.areas)}")


@release_app.command()
def draft(incident_id: Annotated[str, typer.Argument(help="Incident id")], by: By,
          all_clear: Annotated[bool, typer.Option("--all-clear", help="Draft the all-clear that ends it")] = False,
          template: Annotated[str | None, typer.Option(help="The plan's release template id; default the "
                                                            "first for the grade")] = None,
          channel: Annotated[list[str] | None, typer.Option(help="cap, sms_broadcast, webhook (repeat); default "
                                                                 "the template's")] = None) -> None:
    """Draft the incident's next release from its plan level's template: the alert, then updates, or the all-clear."""
    from pingan.schemas.release import ReleaseChannel

    try:
        channels = [ReleaseChannel(c) for c in channel] if channel else None
    except ValueError:
        runtime.fail(f"--channel: one of {', '.join(c.value for c in ReleaseChannel)}")
    step = _run(lambda: _service().draft(incident_id, _caller(by), all_clear=all_clear, template_id=template,
                                         channels=channels))
    _print(step.release)


@release_app.command()
def edit(release_id: Annotated[str, typer.Argument(help="Release id")], by: By,
         headline_zh: Annotated[str | None, typer.Option(help="New headline (zh)")] = None,
         headline_en: Annotated[str | None, typer.Option(help="New headline (en)")] = None,
         description_zh: Annotated[str | None, typer.Option(help="New description (zh)")] = None,
         description_en: Annotated[str | None, typer.Option(help="New description (en)")] = None,
         instruction_zh: Annotated[str | None, typer.Option(help="New instruction (zh)")] = None,
         instruction_en: Annotated[str | None, typer.Option(help="New instruction (en)")] = None,
         texts_file: Annotated[Path | None, typer.Option(
             "--texts", help="A JSON file of all the texts: {headline: {zh, en}, description: {…}, instruction}")
         ] = None,
         channel: Annotated[list[str] | None, typer.Option(help="Replace the channels (repeat)")] = None) -> None:
    """A new revision of a draft (or a rejected or approved release, which goes back to draft)."""
    from pydantic import ValidationError

    from pingan.schemas.release import ReleaseChannel, ReleaseTexts

    service = _service()
    current = _run(lambda: service.get(release_id))
    texts = None
    given = {k: v for k, v in (("headline_zh", headline_zh), ("headline_en", headline_en),
                               ("description_zh", description_zh), ("description_en", description_en),
                               ("instruction_zh", instruction_zh), ("instruction_en", instruction_en)) if v is not None}
    try:
        if texts_file is not None:
            texts = ReleaseTexts.model_validate(json.loads(texts_file.read_text(encoding="utf-8")))
        elif given:
            data = current.texts.model_dump(mode="json")
            for key, value in given.items():
                name, lang = key.rsplit("_", 1)
                data[name] = {**(data.get(name) or {"zh": value}), lang: value}
            texts = ReleaseTexts.model_validate(data)
        channels = [ReleaseChannel(c) for c in channel] if channel else None
    except ValidationError as exc:
        runtime.fail(f"texts: {runtime.describe_validation(exc)}")
    except (OSError, json.JSONDecodeError) as exc:
        runtime.fail(f"--texts {texts_file}: {exc}")
    except ValueError:
        runtime.fail(f"--channel: one of {', '.join(c.value for c in ReleaseChannel)}")
    step = _run(lambda: service.edit(release_id, _caller(by), texts=texts, channels=channels))
    _print(step.release)


@release_app.command()
def show(release_id: Annotated[str, typer.Argument(help="Release id")],
         as_json: Annotated[bool, typer.Option("--json", help="The whole release as JSON")] = False) -> None:
    """One release: its state, revision, who did what, and its texts."""
    service = _service()
    release = _run(lambda: service.get(release_id))
    if as_json:
        runtime.echo_lines(json.dumps(release.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    _print(release)
    # Who was asked to approve it, and whether the messages went out: the drafter sees whom to chase.
    for asked in service.approval_requests(release.incident_id).get(release.id, []):
        sent = ", ".join(f"{channel} {state}" for channel, state in asked.channels.items())
        runtime.echo(f"  asked     {asked.person} (revision {asked.revision}) at "
                     f"{asked.at.isoformat(timespec='seconds')}: {sent}")


@release_app.command("list")
def list_releases(incident_id: Annotated[str, typer.Argument(help="Incident id")]) -> None:
    """The incident's releases, in drafting order."""
    for release in _run(lambda: _service().for_incident(incident_id)):
        runtime.echo(f"{release.id:<28} {release.kind.value:<9} {release.state.value:<9} rev {release.revision:<3} "
                     f"{release.texts.headline.zh}")


@release_app.command()
def approve(release_id: Annotated[str, typer.Argument(help="Release id")], by: By, revision: Revision = None) -> None:
    """Approve (four eyes: not the drafter nor the last editor; a role the plan names)."""
    _print(_run(lambda: _service().approve(release_id, _caller(by), revision)).release)


@release_app.command()
def reject(release_id: Annotated[str, typer.Argument(help="Release id")], by: By,
           reason: Annotated[str, typer.Option(help="Why, for the drafter (required)")]) -> None:
    """Send it back to the drafter with a reason."""
    _print(_run(lambda: _service().reject(release_id, _caller(by), reason)).release)


@release_app.command()
def publish(release_id: Annotated[str, typer.Argument(help="Release id")], by: By, revision: Revision = None) -> None:
    """Publish an approved release, at its approved revision, to every channel it names."""
    _print(_run(lambda: _service().publish(release_id, _caller(by), revision)).release)


@release_app.command()
def withdraw(release_id: Annotated[str, typer.Argument(help="Release id")], by: By,
             reason: Annotated[str, typer.Option(help="Why")] = "") -> None:
    """Abandon a release before publication."""
    _print(_run(lambda: _service().withdraw(release_id, _caller(by), reason)).release)
