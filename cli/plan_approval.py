"""`pingan plans approve ID --by NAME`: four-eyes approval, recorded in the command-chain log.

Approvers are the directory's people with `roles: [plan_approver]`; the plan's last editor never approves."""

import os
from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime


def approve(
    plan_id: Annotated[str, typer.Argument(help="The plan id")],
    by: Annotated[str, typer.Option("--by", help="Person id of the approver (a plan_approver of the directory)")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Plans directory; default PINGAN_PLANS_DIR")] = None,
) -> None:
    """Approve a plan: sets status approved, adds the approver, and logs it. Only the directory's plan approvers
    may, and never the plan's last editor."""
    from pingan.commands import ApprovalRefused, approve_plan

    if os.environ.get("PINGAN_PLAN_APPROVERS"):
        # The setting once switched four eyes on; silently ignoring it would let someone believe it still narrows.
        typer.echo("note: PINGAN_PLAN_APPROVERS is no longer read; approvers are the directory's people with "
                   "roles: [plan_approver] (plans/directory/people.yaml)", err=True)
    settings = runtime.settings()
    try:
        plan = approve_plan(runtime.store, directory or settings.plans_dir, plan_id, by)
    except ApprovalRefused as exc:
        runtime.fail(str(exc))
    typer.echo(f"approved {plan.id} v{plan.version} by {by}; logged")
