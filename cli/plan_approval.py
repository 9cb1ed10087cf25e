"""`pingan plans approve ID --by NAME`: four-eyes approval, recorded in the command-chain log."""

from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime


def approve(
    plan_id: Annotated[str, typer.Argument(help="The plan id")],
    by: Annotated[str, typer.Option("--by", help="Person id of the approver (from the directory)")],
    directory: Annotated[Path | None, typer.Option("--dir", help="Plans directory; default PINGAN_PLANS_DIR")] = None,
) -> None:
    """Approve a plan: sets status approved, adds the approver, and logs it. Refuses the plan's last editor."""
    from pingan.commands import ApprovalRefused, approve_plan

    settings = runtime.settings()
    try:
        plan = approve_plan(runtime.store, directory or settings.plans_dir, plan_id, by, settings.plan_approvers)
    except ApprovalRefused as exc:
        runtime.fail(str(exc))
    typer.echo(f"approved {plan.id} v{plan.version} by {by}; logged")
