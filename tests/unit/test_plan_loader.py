"""Plan loading: plans and directory load, and every mistake names its file, line, column and field."""

from pathlib import Path

import pytest

from pingan.handlers.plans.directory import DirectoryIndex
from pingan.handlers.plans.load import load_plans
from pingan.handlers.plans.planset import PlanSet
from pingan.handlers.plans.problems import PlanLoadError, PlanProblem, Severity
from pingan.plans import PLANS_DIR
from pingan.schemas.directory import Directory
from pingan.schemas.plan import Plan
from pingan.schemas.taxonomy import Category, Grade, Subtype

# Line numbers in the tests below count from the top of GOOD.
GOOD = """\
id: {id}
version: 1
title:
  zh: 测试预案
  en: Test plan
owner: emergency
applies_to:
  category: accident_disaster
  subtypes: [fire]
levels:
  - grade: III
    response_level: 三级响应
    notify:
      - id: duty-room
        targets: [{{roster: duty-room}}]
        channels: [{channel}]
        template:
          zh: "{{title}} 编号 {{id}}"
"""

DIRECTORY = """\
people:
  - id: zhang-san
    name: 张三
    contacts: {sms: "+12025550101", console: duty-room}
departments:
  - id: emergency
    name: {zh: 应急管理局}
    duty_roster: duty-room
rosters:
  - id: duty-room
    name: {zh: 值班室}
    members: [zhang-san]
    rotation: {kind: daily, start: 2026-01-01}
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def plans_dir(tmp_path: Path) -> Path:
    write(tmp_path, "directory/all.yaml", DIRECTORY)
    return tmp_path


def load_error(directory: Path) -> PlanLoadError:
    with pytest.raises(PlanLoadError) as info:
        load_plans(directory)
    return info.value


def test_shipped_plans_load() -> None:
    plans = load_plans(PLANS_DIR)
    typhoon = plans.get("typhoon")
    assert typhoon is not None and typhoon.applies_to.hazards == ["typhoon"]
    assert typhoon.title.zh and typhoon.title.en
    assert (Category.natural_disaster, Subtype.meteorological, Grade.II) in plans.index
    assert plans.sources["typhoon"].endswith("typhoon.yaml")
    assert "duty-room" in plans.directory.rosters and plans.directory.people
    assert plans.hashes["typhoon"] == typhoon.content_hash()


def test_good_file_in_tmp_loads_yml_too(plans_dir: Path) -> None:
    write(plans_dir, "a.yml", GOOD.format(id="a", channel="console"))
    write(plans_dir, "notes.txt", "not a plan")
    plans = load_plans(plans_dir)
    assert [p.id for p in plans] == ["a"]
    assert set(plans.directory.people) == {"zhang-san"}


def test_index_grades_come_from_the_levels(plans_dir: Path) -> None:
    write(plans_dir, "a.yaml", GOOD.format(id="a", channel="console"))
    index = load_plans(plans_dir).index
    assert list(index) == [(Category.accident_disaster, Subtype.fire, Grade.III)]
    assert [p.id for p in index[(Category.accident_disaster, Subtype.fire, Grade.III)][None]] == ["a"]


def test_bad_field_names_file_line_and_field(plans_dir: Path) -> None:
    path = write(plans_dir, "bad.yaml", GOOD.format(id="bad", channel="pigeon"))
    error = load_error(plans_dir)
    (problem,) = error.problems
    # `channels: [pigeon]` is line 16; pigeon starts in column 20.
    assert (problem.file, problem.line, problem.col) == (str(path), 16, 20)
    assert str(error).startswith(f"{path}:16:20: levels[0].notify[0].channels[0]: ")


def test_missing_field_points_at_the_mapping_that_lacks_it(plans_dir: Path) -> None:
    write(plans_dir, "m.yaml", GOOD.format(id="m", channel="console").replace("version: 1\n", ""))
    (problem,) = load_error(plans_dir).problems
    assert (problem.line, problem.col) == (1, 1) and problem.message.startswith("version: Field required")


def test_missing_level_field_points_at_the_level(plans_dir: Path) -> None:
    write(plans_dir, "m.yaml", GOOD.format(id="m", channel="console").replace("    response_level: 三级响应\n", ""))
    (problem,) = load_error(plans_dir).problems
    assert (problem.line, problem.col) == (11, 5)
    assert problem.message.startswith("levels[0].response_level: Field required")


def test_enum_error_inside_a_flow_list_points_at_the_item(plans_dir: Path) -> None:
    write(plans_dir, "e.yaml", GOOD.format(id="e", channel="console").replace("[fire]", "[typhoon]"))
    (problem,) = load_error(plans_dir).problems
    assert (problem.line, problem.col) == (9, 14) and problem.message.startswith("applies_to.subtypes[0]:")


def test_model_validator_error_points_at_its_key(plans_dir: Path) -> None:
    # A subtype from another category fails AppliesTo's own validator, whose loc is the whole block.
    write(plans_dir, "s.yaml", GOOD.format(id="s", channel="console").replace("[fire]", "[meteorological]"))
    (problem,) = load_error(plans_dir).problems
    assert problem.line == 7 and problem.message.startswith("applies_to: ")
    assert "not in category 'accident_disaster'" in problem.message


def test_yaml_syntax_error_gives_its_own_line(plans_dir: Path) -> None:
    path = write(plans_dir, "broken.yaml", "id: x\nversion: 1\ntitle: [unclosed\nnotify: []\n")
    (problem,) = load_error(plans_dir).problems
    assert problem.file == str(path) and problem.line == 4
    assert "YAML syntax error" in problem.message and "started at line 3" in problem.message


def test_non_mapping_and_empty_files(plans_dir: Path) -> None:
    write(plans_dir, "empty.yaml", "")
    write(plans_dir, "list.yaml", "- 1\n- 2\n")
    problems = load_error(plans_dir).problems
    assert [(Path(p.file).name, p.line) for p in problems] == [("empty.yaml", 1), ("list.yaml", 1)]


def test_duplicate_plan_id_across_files(plans_dir: Path) -> None:
    first = write(plans_dir, "a.yaml", GOOD.format(id="same", channel="console"))
    second = write(plans_dir, "b.yaml", GOOD.format(id="same", channel="console"))
    (problem,) = load_error(plans_dir).problems
    assert problem.file == str(second) and (problem.line, problem.col) == (1, 5)
    assert "duplicate plan id 'same'" in problem.message and f"{first}:1:5" in problem.message


def test_duplicate_yaml_key_is_an_error(plans_dir: Path) -> None:
    write(plans_dir, "d.yaml", GOOD.format(id="d", channel="console") + "version: 2\n")
    (problem,) = load_error(plans_dir).problems
    assert (problem.line, problem.col) == (19, 1) and "duplicate key 'version'" in problem.message


def test_unknown_template_placeholder_is_an_error(plans_dir: Path) -> None:
    write(plans_dir, "t.yaml", GOOD.format(id="t", channel="console").replace("编号 {id}", "编号 {titel}"))
    (problem,) = load_error(plans_dir).problems
    assert problem.line == 18 and "levels[0].notify[0].template.zh" in problem.message
    assert "{titel}" in problem.message and "{level} {plan} {role}" in problem.message


@pytest.mark.parametrize("bad", ["{title!r}", "{id:>8}", "{title.upper}", "{0}", "{}", "{title"])
def test_placeholders_must_be_bare_known_names(plans_dir: Path, bad: str) -> None:
    write(plans_dir, "t.yaml", GOOD.format(id="t", channel="console").replace("编号 {id}", bad))
    (problem,) = load_error(plans_dir).problems
    assert problem.line == 18 and problem.message.startswith("levels[0].notify[0].template.zh: ")


def test_level_and_role_placeholders_are_allowed(plans_dir: Path) -> None:
    write(plans_dir, "t.yaml", GOOD.format(id="t", channel="console").replace("编号 {id}", "{level} {role}"))
    assert load_plans(plans_dir).get("t") is not None


def test_all_problems_are_reported_together(plans_dir: Path) -> None:
    write(plans_dir, "a.yaml", GOOD.format(id="a", channel="pigeon"))
    write(plans_dir, "b.yaml", "id: [\n")
    error = load_error(plans_dir)
    assert [Path(p.file).name for p in error.problems] == ["a.yaml", "b.yaml"]


def test_set_level_errors_stop_loading_too(plans_dir: Path) -> None:
    path = write(plans_dir, "r.yaml", GOOD.format(id="r", channel="console").replace("duty-room}", "nobody}"))
    (problem,) = load_error(plans_dir).problems
    assert str(problem) == f"{path}:15:28: levels[0].notify[0].targets[0].roster: unknown roster 'nobody'"


def test_directory_files_merge_and_duplicates_are_errors(plans_dir: Path) -> None:
    write(plans_dir, "a.yaml", GOOD.format(id="a", channel="console"))
    extra = write(plans_dir, "directory/more.yml", "people:\n  - id: li-si\n    name: 李四\n")
    assert set(load_plans(plans_dir).directory.people) == {"zhang-san", "li-si"}
    extra.write_text("people:\n  - id: zhang-san\n    name: 张三\n", encoding="utf-8")
    (problem,) = load_error(plans_dir).problems
    assert problem.file == str(extra) and (problem.line, problem.col) == (2, 9)
    assert "duplicate id 'zhang-san'" in problem.message and "all.yaml:2:5" in problem.message


def test_directory_file_schema_errors_have_positions(plans_dir: Path) -> None:
    bad = write(plans_dir, "directory/bad.yaml", "peple:\n  - id: x\n")
    (problem,) = load_error(plans_dir).problems
    assert (problem.file, problem.line, problem.col) == (str(bad), 1, 1) and "peple" in problem.message


def test_missing_directory(tmp_path: Path) -> None:
    assert "does not exist" in str(load_error(tmp_path / "nope"))


def test_problem_rendering() -> None:
    assert str(PlanProblem("p.yaml", 3, 7, "boom")) == "p.yaml:3:7: boom"
    assert str(PlanProblem("dir", 0, 0, "gone")) == "dir: gone"
    assert str(PlanProblem("p.yaml", 3, 7, "hm", Severity.warning)) == "p.yaml:3:7: warning: hm"


def test_empty_and_of() -> None:
    assert len(PlanSet.empty()) == 0 and PlanSet.empty().index == {} and PlanSet.empty().hashes == {}
    plan = Plan.model_validate({
        "id": "p", "version": 1, "title": {"zh": "p"}, "owner": "emergency",
        "applies_to": {"category": "natural_disaster"},
        "levels": [{"grade": "I", "response_level": "一级", "notify": [
            {"id": "s", "targets": [{"roster": "r"}], "channels": ["console"], "template": {"zh": "{title}"}}]}],
    })
    directory = Directory()
    assert PlanSet.of([plan]).directory == DirectoryIndex.empty()
    planset = PlanSet.of([plan], directory=directory)
    assert planset.get("p") is plan and planset.hashes == {"p": plan.content_hash()}
    assert (Category.natural_disaster, None, Grade.I) in planset.index
