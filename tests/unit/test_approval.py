from pingan.handlers.plans.approval import approval_refusal, approved_yaml
from pingan.schemas.plan import Plan

PLAN = Plan.model_validate({
    "id": "p", "version": 2, "title": {"zh": "预案"}, "owner": "emergency", "status": "draft", "last_editor": "li",
    "applies_to": {"category": "accident_disaster"},
    "levels": [{"grade": "IV", "response_level": "四级响应", "notify": [
        {"id": "s", "targets": [{"roster": "duty-room"}], "channels": ["console"], "template": {"zh": "x"}}]}],
})
PEOPLE = {"li", "zhang", "wang"}


def test_four_eyes_refuses_the_last_editor_when_approvers_are_configured() -> None:
    assert "four eyes" in (approval_refusal(PLAN, "li", {"li", "zhang"}, PEOPLE) or "")
    assert approval_refusal(PLAN, "zhang", {"li", "zhang"}, PEOPLE) is None
    assert "not one of the configured approvers" in (approval_refusal(PLAN, "wang", {"li", "zhang"}, PEOPLE) or "")
    # Without configured approvers anyone in the directory may approve (small offices).
    assert approval_refusal(PLAN, "li", None, PEOPLE) is None
    assert "not a person" in (approval_refusal(PLAN, "mallory", None, PEOPLE) or "")


def test_approved_yaml_keeps_comments_and_adds_the_approver() -> None:
    text = "# 预案说明\nid: p\nstatus: draft  # 草稿\napproved_by: [zhang]\nversion: 2\n"
    out = approved_yaml(text, "wang")
    assert out == "# 预案说明\nid: p\nstatus: approved\napproved_by: [zhang, wang]\nversion: 2\n"
    block = "id: p\nstatus: draft\napproved_by:\n  - zhang\nversion: 2\n"
    assert approved_yaml(block, "wang") == "id: p\nstatus: approved\napproved_by:\n  - zhang\n  - wang\nversion: 2\n"
    assert approved_yaml("id: p\n", "wang") == "id: p\nstatus: approved\napproved_by: [wang]\n"
