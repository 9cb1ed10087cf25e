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
    from pingan.handlers.plans.approval import approval_refusal, approved_yaml
    from pingan.handlers.plans.load import load_plans
    from pingan.handlers.plans.problems import PlanLoadError
    from pingan.schemas.action import ActionDraft, ActionKind
    from pingan.schemas.common import utcnow
    from pingan.store.engine import write_tx
    from pingan.store.log import append_actions

    settings = runtime.settings()
    plans_dir = directory or settings.plans_dir
    try:
        plans = load_plans(plans_dir)
    except PlanLoadError as exc:
        runtime.fail(f"the plan set does not load; fix it first:\n{exc}")
    plan = plans.get(plan_id)
    if plan is None:
        runtime.fail(f"no plan {plan_id!r} in {plans_dir}")
    configured = settings.plan_approvers
    approvers = {a.strip() for a in configured.split(",") if a.strip()} if configured else None
    refusal = approval_refusal(plan, by, approvers, set(plans.directory.people))
    if refusal:
        runtime.fail(refusal)
    path = Path(plans.sources[plan.id])
    path.write_text(approved_yaml(path.read_text(encoding="utf-8"), by), encoding="utf-8")
    approved = load_plans(plans_dir).get(plan_id)
    assert approved is not None
    store = runtime.store()
    with write_tx(store.engine) as conn:
        append_actions(conn, [ActionDraft(
            incident_id=f"plan:{plan.id}", at=utcnow(), actor=by, kind=ActionKind.plan_approved,
            plan_id=plan.id, plan_version=plan.version,
            details={"file": str(path), "plan_hash": approved.content_hash(), "last_editor": plan.last_editor,
                     "approved_by": approved.approved_by},
        )])
    typer.echo(f"approved {plan.id} v{plan.version} by {by}; logged")
