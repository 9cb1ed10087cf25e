"""Plan loading: the shipped plans load, and every mistake names its file, line, column and field."""

from pathlib import Path

import pytest

from pingan.handlers.plan_loader import PlanLoadError, PlanProblem, PlanSet, load_plans
from pingan.plans import PLANS_DIR
from pingan.schemas.taxonomy import Category, Grade, Subtype

GOOD = """\
id: {id}
version: 1
title:
  zh: 测试预案
  en: Test plan
applies_to:
  category: accident_disaster
  subtypes: [fire]
notify:
  - id: duty-room
    recipients:
      - id: duty-room
        name: 区应急值班室
        channel: {channel}
        address: duty-room
    template:
      zh: "{{title}} 编号 {{id}}"
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(directory: Path) -> PlanLoadError:
    with pytest.raises(PlanLoadError) as info:
        load_plans(directory)
    return info.value


def test_shipped_plans_load() -> None:
    plans = load_plans(PLANS_DIR)
    assert sorted(p.id for p in plans) == ["building-fire", "hazchem-leak", "typhoon"]
    typhoon = plans.get("typhoon")
    assert typhoon is not None and typhoon.applies_to.hazards == ["typhoon"]
    assert typhoon.title.zh and typhoon.title.en
    assert (Category.accident_disaster, Subtype.fire, Grade.III) in plans.index
    assert plans.sources["building-fire"].endswith("building-fire.yaml")


def test_shipped_plans_use_known_console_duty_room_and_e164_numbers() -> None:
    for plan in load_plans(PLANS_DIR):
        recipients = [r for step in plan.notify for r in step.recipients]
        duty = [r for r in recipients if r.id == "duty-room"]
        assert duty and all(r.channel.value == "console" and r.address == "duty-room" for r in duty)
        for r in recipients:
            if r.channel.value == "twilio_sms":
                assert r.address.startswith("+86138") and len(r.address) == 14, r


def test_good_file_in_tmp_loads_yml_too(tmp_path: Path) -> None:
    write(tmp_path, "a.yml", GOOD.format(id="a", channel="console"))
    write(tmp_path, "notes.txt", "not a plan")
    plans = load_plans(tmp_path)
    assert [p.id for p in plans] == ["a"]


def test_bad_field_names_file_line_and_field(tmp_path: Path) -> None:
    path = write(tmp_path, "bad.yaml", GOOD.format(id="bad", channel="pigeon"))
    error = load_error(tmp_path)
    assert len(error.problems) == 1
    problem = error.problems[0]
    # `channel: pigeon` is line 14; the value starts in column 18.
    assert (problem.file, problem.line, problem.col) == (str(path), 14, 18)
    assert "notify[0].recipients[0].channel" in problem.message
    assert str(error).startswith(f"{path}:14:18: notify[0].recipients[0].channel: ")


def test_missing_field_points_at_the_mapping_that_lacks_it(tmp_path: Path) -> None:
    text = GOOD.format(id="m", channel="console").replace("version: 1\n", "")
    write(tmp_path, "m.yaml", text)
    (problem,) = load_error(tmp_path).problems
    assert (problem.line, problem.col) == (1, 1) and problem.message.startswith("version: Field required")


def test_bad_list_item_points_at_the_item(tmp_path: Path) -> None:
    grades = "  subtypes: [fire]\n  grades:\n    - I\n    - V\n"
    text = GOOD.format(id="g", channel="console").replace("  subtypes: [fire]\n", grades)
    write(tmp_path, "g.yaml", text)
    (problem,) = load_error(tmp_path).problems
    assert problem.line == 11 and problem.message.startswith("applies_to.grades[1]:")


def test_enum_error_inside_a_flow_list_points_at_the_item(tmp_path: Path) -> None:
    write(tmp_path, "e.yaml", GOOD.format(id="e", channel="console").replace("[fire]", "[typhoon]"))
    (problem,) = load_error(tmp_path).problems
    assert (problem.line, problem.col) == (8, 14) and problem.message.startswith("applies_to.subtypes[0]:")


def test_model_validator_error_points_at_its_key(tmp_path: Path) -> None:
    # A subtype from another category fails AppliesTo's own validator, whose loc is the whole block.
    write(tmp_path, "s.yaml", GOOD.format(id="s", channel="console").replace("[fire]", "[meteorological]"))
    (problem,) = load_error(tmp_path).problems
    assert problem.line == 6 and problem.message.startswith("applies_to: ")
    assert "not in category 'accident_disaster'" in problem.message


def test_yaml_syntax_error_gives_its_own_line(tmp_path: Path) -> None:
    path = write(tmp_path, "broken.yaml", "id: x\nversion: 1\ntitle: [unclosed\nnotify: []\n")
    (problem,) = load_error(tmp_path).problems
    assert problem.file == str(path) and problem.line == 4
    assert "YAML syntax error" in problem.message and "started at line 3" in problem.message
    assert str(problem).startswith(f"{path}:4:")


def test_non_mapping_and_empty_files(tmp_path: Path) -> None:
    write(tmp_path, "empty.yaml", "")
    write(tmp_path, "list.yaml", "- 1\n- 2\n")
    problems = load_error(tmp_path).problems
    assert [(Path(p.file).name, p.line) for p in problems] == [("empty.yaml", 1), ("list.yaml", 1)]


def test_duplicate_plan_id_across_files(tmp_path: Path) -> None:
    first = write(tmp_path, "a.yaml", GOOD.format(id="same", channel="console"))
    second = write(tmp_path, "b.yaml", GOOD.format(id="same", channel="console"))
    (problem,) = load_error(tmp_path).problems
    assert problem.file == str(second) and (problem.line, problem.col) == (1, 5)
    assert "duplicate plan id 'same'" in problem.message and f"{first}:1:5" in problem.message


def test_duplicate_yaml_key_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "d.yaml", GOOD.format(id="d", channel="console") + "version: 2\n")
    (problem,) = load_error(tmp_path).problems
    assert problem.line == 18 and "duplicate key 'version'" in problem.message


def test_unknown_template_placeholder_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "t.yaml", GOOD.format(id="t", channel="console").replace("编号 {id}", "编号 {titel}"))
    (problem,) = load_error(tmp_path).problems
    assert problem.line == 17 and "notify[0].template.zh" in problem.message and "{titel}" in problem.message


@pytest.mark.parametrize("bad", ["{title!r}", "{id:>8}", "{title.upper}", "{0}", "{}", "{title"])
def test_placeholders_must_be_bare_known_names(tmp_path: Path, bad: str) -> None:
    write(tmp_path, "t.yaml", GOOD.format(id="t", channel="console").replace("编号 {id}", bad))
    (problem,) = load_error(tmp_path).problems
    assert problem.line == 17 and problem.message.startswith("notify[0].template.zh: ")


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    write(tmp_path, "a.yaml", GOOD.format(id="a", channel="pigeon"))
    write(tmp_path, "b.yaml", "id: [\n")
    error = load_error(tmp_path)
    assert [Path(p.file).name for p in error.problems] == ["a.yaml", "b.yaml"]
    assert len(str(error).splitlines()) == 2


def test_missing_directory(tmp_path: Path) -> None:
    error = load_error(tmp_path / "nope")
    assert "does not exist" in str(error)


def test_problem_rendering() -> None:
    assert str(PlanProblem("p.yaml", 3, 7, "boom")) == "p.yaml:3:7: boom"
    assert str(PlanProblem("dir", 0, 0, "gone")) == "dir: gone"


def test_empty_planset() -> None:
    assert len(PlanSet.empty()) == 0 and PlanSet.empty().index == {}
