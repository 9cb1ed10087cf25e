"""Plan approval with four eyes. Pure: the plan, the approver and the rules in; a refusal or an edit out."""

import re

from pingan.schemas.plan import Plan, PlanStatus


def approval_refusal(plan: Plan, approver: str, approvers: set[str] | None, people: set[str]) -> str | None:
    """Why `approver` may not approve `plan`, or None when they may."""
    if people and approver not in people:
        return f"{approver!r} is not a person in the directory"
    if plan.status is PlanStatus.retired:
        return f"plan {plan.id!r} is retired"
    if approvers is not None:
        if approver not in approvers:
            return f"{approver!r} is not one of the configured approvers ({', '.join(sorted(approvers))})"
        if plan.last_editor and approver == plan.last_editor:
            return f"four eyes: {approver!r} is the last editor of {plan.id!r} and cannot approve it"
    if approver in plan.approved_by and plan.status is PlanStatus.approved:
        return f"{approver!r} has already approved {plan.id!r} v{plan.version}"
    return None


def approved_yaml(text: str, approver: str) -> str:
    """The plan file with `status: approved` and the approver added, every comment and line kept."""
    if re.search(r"(?m)^status:", text):
        text = re.sub(r"(?m)^status:.*$", "status: approved", text, count=1)
    else:
        text = text.rstrip("\n") + "\nstatus: approved\n"
    flow = re.search(r"(?m)^approved_by:\s*\[(.*)\]\s*$", text)
    if flow:
        names = [n.strip() for n in flow.group(1).split(",") if n.strip()]
        if approver not in names:
            names.append(approver)
        return text[: flow.start()] + f"approved_by: [{', '.join(names)}]" + text[flow.end():]
    block = re.search(r"(?m)^approved_by:\s*\n((?:[ \t]+-.*\n?)*)", text)
    if block:
        if re.search(rf"(?m)^[ \t]+-\s*{re.escape(approver)}\s*$", block.group(1)):
            return text
        indent = re.match(r"[ \t]+", block.group(1)).group(0) if block.group(1) else "  "  # type: ignore[union-attr]
        insert_at = block.end()
        if not text[:insert_at].endswith("\n"):
            return text[:insert_at] + f"\n{indent}- {approver}\n" + text[insert_at:]
        return text[:insert_at] + f"{indent}- {approver}\n" + text[insert_at:]
    return text.rstrip("\n") + f"\napproved_by: [{approver}]\n"
