"""Plan approval with four eyes, always. Pure: the plan, the approver and the directory in; a refusal or an edit out.

Who may approve is the directory's business (plans/directory/people.yaml, `roles: [plan_approver]`), reviewed with the
plans themselves; no setting turns the rule on or off. The last editor of a version never approves it, and a version
that does not name its last editor cannot be approved at all: four eyes need to know whose the first pair was.
"""

import re
from collections.abc import Mapping

from pingan.schemas.directory import DirectoryRole, Person
from pingan.schemas.plan import Plan, PlanStatus


def plan_approvers(people: Mapping[str, Person]) -> list[str]:
    """Person ids holding the directory's plan_approver role, sorted."""
    return sorted(pid for pid, person in people.items() if DirectoryRole.plan_approver in person.roles)


def approval_refusal(plan: Plan, approver: str, people: Mapping[str, Person]) -> str | None:
    """Why `approver` may not approve `plan`, or None when they may. `people` is the directory's, by id."""
    if approver not in people:
        return f"{approver!r} is not a person in the directory"
    if plan.status is PlanStatus.retired:
        return f"plan {plan.id!r} is retired"
    if not plan.last_editor:
        return (f"four eyes: plan {plan.id!r} v{plan.version} does not name its last_editor, so nobody can tell "
                f"whether {approver!r} edited it; set last_editor first")
    if approver == plan.last_editor:
        return f"four eyes: {approver!r} is the last editor of {plan.id!r} and cannot approve it"
    if DirectoryRole.plan_approver not in people[approver].roles:
        approvers = plan_approvers(people)
        who = (f"approvers: {', '.join(approvers)}" if approvers else
               "no one in the directory holds it yet (plans/directory/people.yaml)")
        return f"{approver!r} does not hold the directory role plan_approver ({who})"
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
