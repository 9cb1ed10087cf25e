"""Four eyes always (issue 14, finding 9): approvers come from the directory's roles, and the last editor never
approves, with no setting needed."""

import pytest
from pydantic import ValidationError

from pingan.handlers.plans.approval import approval_refusal, approved_yaml
from pingan.schemas.directory import Person
from pingan.schemas.plan import Plan

PLAN = Plan.model_validate({
    "id": "p", "version": 2, "title": {"zh": "预案"}, "owner": "emergency", "status": "draft", "last_editor": "li",
    "applies_to": {"category": "accident_disaster"},
    "levels": [{"grade": "IV", "response_level": "四级响应", "notify": [
        {"id": "s", "targets": [{"roster": "duty-room"}], "channels": ["console"], "template": {"zh": "x"}}]}],
})
PEOPLE = {p.id: p for p in (
    Person(id="li", name="李", roles=["plan_approver"]),
    Person(id="zhang", name="张", roles=["plan_approver"]),
    Person(id="wang", name="王"),
)}


def test_the_last_editor_never_approves_even_holding_the_role() -> None:
    assert "four eyes" in (approval_refusal(PLAN, "li", PEOPLE) or "")
    assert approval_refusal(PLAN, "zhang", PEOPLE) is None


def test_approval_needs_the_directory_role() -> None:
    refusal = approval_refusal(PLAN, "wang", PEOPLE) or ""
    assert "plan_approver" in refusal and "approvers: li, zhang" in refusal  # says who may
    assert "not a person" in (approval_refusal(PLAN, "mallory", PEOPLE) or "")
    assert "no one in the directory" in (approval_refusal(PLAN, "wang", {"wang": PEOPLE["wang"]}) or "")


def test_a_plan_that_does_not_name_its_last_editor_cannot_be_approved() -> None:
    anonymous = PLAN.model_copy(update={"last_editor": None})
    assert "last_editor" in (approval_refusal(anonymous, "zhang", PEOPLE) or "")


def test_already_approved_and_retired() -> None:
    approved = Plan.model_validate({**PLAN.model_dump(), "status": "approved", "approved_by": ["zhang"]})
    assert "already approved" in (approval_refusal(approved, "zhang", PEOPLE) or "")
    retired = Plan.model_validate({**PLAN.model_dump(), "status": "retired"})
    assert "retired" in (approval_refusal(retired, "zhang", PEOPLE) or "")


def test_directory_roles_are_a_known_set() -> None:
    with pytest.raises(ValidationError, match="roles"):
        Person(id="x", name="X", roles=["plan_aprover"])


def test_approved_yaml_keeps_comments_and_adds_the_approver() -> None:
    text = "# 预案说明\nid: p\nstatus: draft  # 草稿\napproved_by: [zhang]\nversion: 2\n"
    out = approved_yaml(text, "wang")
    assert out == "# 预案说明\nid: p\nstatus: approved\napproved_by: [zhang, wang]\nversion: 2\n"
    block = "id: p\nstatus: draft\napproved_by:\n  - zhang\nversion: 2\n"
    assert approved_yaml(block, "wang") == "id: p\nstatus: approved\napproved_by:\n  - zhang\n  - wang\nversion: 2\n"
    assert approved_yaml("id: p\n", "wang") == "id: p\nstatus: approved\napproved_by: [wang]\n"
