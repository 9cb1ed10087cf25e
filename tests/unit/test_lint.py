"""`lint_plans` on broken copies of the shipped plans: each mistake is one precise `file:line:col: message`.

Every test copies plans/ into tmp_path, breaks one thing in the copy's text and expects exactly the one error
that names it. Positions are computed from the text being edited, so the tests follow the shipped files.
"""

import re
import shutil
from pathlib import Path

import pytest

from pingan.handlers.plans.lint import lint_plans
from pingan.handlers.plans.problems import Severity
from pingan.plans import PLANS_DIR


def shipped_copy(tmp_path: Path) -> Path:
    target = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, target, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    return target


def position(text: str, needle: str, start_line: int = 1) -> tuple[int, int]:
    """1-based (line, column) of the first `needle` on or after `start_line`."""
    for number, line in enumerate(text.splitlines(), start=1):
        if number >= start_line and needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(f"{needle!r} not found")


def level_span(text: str, grade: str) -> tuple[int, int]:
    """(first, last) line numbers of the typhoon plan's level for `grade`."""
    lines = text.splitlines()
    first = lines.index(f"  - grade: {grade}") + 1
    rest = [n for n, line in enumerate(lines, start=1) if n > first and re.match(r"^(  - grade: |\S)", line)]
    return first, (rest[0] - 1 if rest else len(lines))


def errors(directory: Path) -> list[str]:
    return [str(p) for p in lint_plans(directory).errors]


@pytest.fixture
def plans(tmp_path: Path) -> Path:
    return shipped_copy(tmp_path)


def edit(path: Path, old: str, new: str, count: int = 1) -> str:
    text = path.read_text(encoding="utf-8")
    assert old in text, old
    path.write_text(text.replace(old, new, count), encoding="utf-8")
    return text


def test_shipped_set_is_clean() -> None:
    report = lint_plans(PLANS_DIR)
    assert report.errors == [], "\n".join(map(str, report.errors))
    assert report.planset is not None and len(report.planset) >= 8
    assert all(w.severity is Severity.warning for w in report.warnings)


def test_missing_field(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = edit(path, "    response_level: 二级响应\n", "")
    line, _ = position(text, "  - grade: II")
    # A missing field points at the mapping that lacks it: the level item, after its "- ".
    assert errors(plans) == [f"{path}:{line}:5: levels[1].response_level: Field required"]


def test_unknown_roster(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = edit(path, "{roster: duty-room}", "{roster: duty-rom}")
    line, col = position(text, "{roster: duty-room}")
    assert errors(plans) == [f"{path}:{line}:{col + 9}: levels[0].notify[0].targets[0].roster: unknown roster "
                             "'duty-rom'; did you mean 'duty-room'?"]


def test_two_plans_matching_the_same_cells_equally(plans: Path) -> None:
    original = plans / "typhoon.yaml"
    copy = plans / "typhoon2.yaml"
    text = original.read_text(encoding="utf-8")
    copy.write_text(text.replace("id: typhoon\n", "id: typhoon-2\n", 1), encoding="utf-8")
    line, col = position(text, "applies_to:")
    assert errors(plans) == [
        f"{copy}:{line}:{col}: applies_to: ambiguous match: plans 'typhoon' ({original}:{line}:{col}) and "
        "'typhoon-2' match the same cells with equal specificity: natural_disaster/meteorological/typhoon "
        "grade I/II/III/IV; matching would pick 'typhoon' (lowest id)"
    ]


def test_narrower_area_is_not_ambiguous_and_a_draft_copy_only_warns(plans: Path) -> None:
    text = (plans / "typhoon.yaml").read_text(encoding="utf-8")
    (plans / "typhoon2.yaml").write_text(
        text.replace("id: typhoon\n", "id: typhoon-coast\n").replace("  hazards: [typhoon]\n",
                                                                      "  hazards: [typhoon]\n  areas: ['4403']\n"),
        encoding="utf-8")
    assert errors(plans) == []
    (plans / "typhoon2.yaml").write_text(
        text.replace("id: typhoon\n", "id: typhoon-draft\n").replace("status: approved", "status: draft"),
        encoding="utf-8")
    report = lint_plans(plans)
    assert report.errors == []
    assert any("ambiguous match" in w.message and "exercises and tests only" in w.message for w in report.warnings)


def test_disjoint_matchers_are_not_ambiguous(plans: Path) -> None:
    text = (plans / "typhoon.yaml").read_text(encoding="utf-8")
    for name, value in (("typhoon2.yaml", "land"), ("typhoon3.yaml", "sea")):
        (plans / name).write_text(
            text.replace("id: typhoon\n", f"id: typhoon-{value}\n").replace(
                "  hazards: [typhoon]\n", f"  hazards: [typhoon]\n  matchers: [{{label: where, value: {value}}}]\n"),
            encoding="utf-8")
    assert errors(plans) == []


def test_task_deadline_before_the_first_notification(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = path.read_text(encoding="utf-8")
    first, last = level_span(text, "III")
    lines = text.splitlines(keepends=True)
    for n in range(first - 1, last):  # every step of level III now starts at t+70
        lines[n] = re.sub(r"delay_min: \d+", "delay_min: 70", lines[n])
    path.write_text("".join(lines), encoding="utf-8")
    deadline = position(text, "deadline_min: 60", first)
    delay = position(text, "delay_min: ", first)
    assert errors(plans) == [
        f"{path}:{deadline[0]}:{deadline[1] + 14}: levels[2].tasks[0].deadline_min: task 'report-city' is due at "
        f"t+60, before the level's first notification at t+70 ({path}:{delay[0]}:{delay[1] + 11})"
    ]


def test_task_deadline_before_its_owner_is_told(plans: Path) -> None:
    # Level IV's report-city (owner: the duty-room roster, due t+120) is told only by the first step.
    path = plans / "typhoon.yaml"
    text = path.read_text(encoding="utf-8")
    first, _ = level_span(text, "IV")
    delay = position(text, "delay_min: 0", first)
    lines = text.splitlines(keepends=True)
    lines[delay[0] - 1] = lines[delay[0] - 1].replace("delay_min: 0", "delay_min: 150")
    path.write_text("".join(lines), encoding="utf-8")
    deadline = position(text, "deadline_min: 120", first)
    assert errors(plans) == [
        f"{path}:{deadline[0]}:{deadline[1] + 14}: levels[3].tasks[0].deadline_min: task 'report-city' is due at "
        f"t+120, but its owner (roster duty-room) is told by step 'duty-room' at t+150 "
        f"({path}:{delay[0]}:{delay[1] + 11})"
    ]


def test_bad_yaml_indentation_gives_the_yaml_position(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = edit(path, "    response_level: 二级响应\n", "   response_level: 二级响应\n")
    line, _ = position(text, "    response_level: 二级响应")
    (only,) = errors(plans)
    assert only.startswith(f"{path}:{line}:4: YAML syntax error: expected <block end>")


def test_role_the_level_does_not_define(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = path.read_text(encoding="utf-8")
    first, _ = level_span(text, "III")
    line, col = position(text, "owner: {role: commander}", first)
    lines = text.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace("commander", "logistics")
    path.write_text("".join(lines), encoding="utf-8")
    assert errors(plans) == [
        f"{path}:{line}:{col + 14}: levels[2].tasks[1].owner.role: role 'logistics' is not defined in this "
        "level's command (defined: commander, deputy, operations, public_information)"
    ]


def test_a_step_nobody_can_receive(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = path.read_text(encoding="utf-8")
    first, _ = level_span(text, "IV")
    line, col = position(text, "channels: [console]", first)
    lines = text.splitlines(keepends=True)
    lines[line - 1] = lines[line - 1].replace("console", "webhook")
    path.write_text("".join(lines), encoding="utf-8")
    (only,) = errors(plans)
    assert only.startswith(f"{path}:{line}:{col}: levels[3].notify[0].channels: step 'duty-room' reaches nobody: "
                           "none of ")
    assert only.endswith("has a webhook address")


def test_repeat_needs_an_ack_timeout(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = edit(path, "        ack_timeout_min: 5\n        repeat: 3\n", "        repeat: 3\n")
    line, col = position(text, "ack_timeout_min: 5")  # `repeat: 3` moves up into this line
    assert errors(plans) == [f"{path}:{line}:{col + 8}: levels[0].notify[1].repeat: repeat needs "
                             "ack_timeout_min: it is the interval between repeats"]


def test_unknown_people_and_departments(plans: Path) -> None:
    path = plans / "typhoon.yaml"
    text = edit(path, "owner: emergency", "owner: emergancy")
    edit(path, "approved_by: [huang-liping]", "approved_by: [nobody-at-all]")
    owner = position(text, "owner: emergency")
    approved = position(text, "huang-liping")
    assert errors(plans) == [
        f"{path}:{owner[0]}:{owner[1] + 7}: owner: unknown department 'emergancy'; did you mean 'emergency'?",
        f"{path}:{approved[0]}:{approved[1]}: approved_by[0]: unknown person 'nobody-at-all'",
    ]


def test_directory_references(plans: Path) -> None:
    path = plans / "directory" / "rosters.yaml"
    text = path.read_text(encoding="utf-8")
    member = re.search(r"members: \[([a-z-]+)", text)
    assert member is not None
    edit(path, f"members: [{member.group(1)}", "members: [no-such-person")
    line, col = position(text, member.group(1))
    assert errors(plans) == [f"{path}:{line}:{col}: rosters[0].members[0]: unknown person 'no-such-person'"]


def test_coverage_gap_is_a_warning_in_a_set_without_a_catch_all(plans: Path) -> None:
    removed = [p for p in plans.glob("*.yaml") if "category: social_security" in p.read_text(encoding="utf-8")
               and p.stem != "general-incident"]
    assert removed
    for p in [*removed, plans / "general-incident.yaml"]:
        p.unlink()
    report = lint_plans(plans)
    assert report.errors == []
    gaps = [str(w) for w in report.warnings if "social_security" in w.message or "catch-all" in w.message]
    assert gaps == [f"{plans}: warning: no catch-all plan (applies_to.catch_all: true): an incident no plan covers "
                    "notifies nobody"] + [f"{plans}: warning: coverage gap: no plan covers social_security grade {g}"
                                          for g in ("I", "II", "III", "IV")]


# ── the catch-all plan and the cells only it covers ──────────────────────────────────────────────────────────────

def catch_all_warnings(directory: Path) -> dict[str, str]:
    """category -> its warning about cells only the catch-all covers."""
    out = {}
    for w in lint_plans(directory).warnings:
        found = re.match(r"applies_to\.catch_all: (\w+): cells only the catch-all 'general-incident' covers: ",
                         w.message)
        if found:
            out[found.group(1)] = w.message[found.end():]
    return out


def test_the_shipped_catch_all_leaves_only_documented_cells(plans: Path) -> None:
    warned = catch_all_warnings(plans)
    assert set(warned) <= {"accident_disaster", "public_health", "social_security", "other"}
    assert "undocumented" not in " ".join(warned.values())
    assert "cyber I, II, III, IV (deliberate)" in warned["social_security"]


def test_a_cell_left_to_the_catch_all_is_one_warning_per_category_naming_its_cells(plans: Path) -> None:
    for name in ("earthquake.yaml", "forest-fire.yaml"):
        (plans / name).unlink()
    path = plans / "general-incident.yaml"
    text = path.read_text(encoding="utf-8")
    line, col = position(text, "  catch_all: true")
    report = lint_plans(plans)
    assert report.errors == []
    natural = [str(w) for w in report.warnings if "natural_disaster: cells only the catch-all" in w.message]
    undocumented = "(undocumented: write a plan, or list it in applies_to.uncovered with a reason)"
    assert natural == [f"{path}:{line}:{col + 13}: warning: applies_to.catch_all: natural_disaster: cells only the "
                       f"catch-all 'general-incident' covers: earthquake I, II, III, IV {undocumented}; "
                       f"forest_fire I, II, III, IV {undocumented}"]


def test_two_catch_alls_are_an_error(plans: Path) -> None:
    first = plans / "general-incident.yaml"
    second = plans / "zz-general-copy.yaml"
    text = first.read_text(encoding="utf-8")
    second.write_text(text.replace("id: general-incident", "id: zz-general-copy", 1), encoding="utf-8")
    line, col = position(text, "  catch_all: true")
    assert errors(plans) == [f"{second}:{line}:{col + 13}: applies_to.catch_all: a second catch-all plan: "
                             f"'general-incident' ({first}:{line}:{col + 13}) already takes the incidents no plan "
                             "covers; keep one (or retire the other)"]
    # A retired second version is history, not a second catch-all.
    edit(second, "status: approved", "status: retired")
    assert errors(plans) == []


def test_a_draft_catch_all_and_a_stale_uncovered_entry_are_warnings(plans: Path) -> None:
    path = plans / "general-incident.yaml"
    text = edit(path, "status: approved", "status: draft")
    stale = "    - {category: accident_disaster, subtypes: [fire], reason: {zh: 旧}}\n"
    edit(path, "  uncovered:\n", "  uncovered:\n" + stale)
    report = lint_plans(plans)
    assert report.errors == []
    line, col = position(text, "status: approved")
    warned = [str(w) for w in report.warnings if w.file == str(path)]
    assert f"{path}:{line}:{col + 8}: warning: status: the catch-all plan is draft: actual incidents no approved " \
           "plan covers notify nobody" in warned
    # The documentation is checked against a catch-all in force: approved, the stale entry shows.
    edit(path, "status: draft", "status: approved")
    found = [str(w) for w in lint_plans(plans).warnings if "listed as left to the catch-all" in w.message]
    assert len(found) == 1 and "accident_disaster fire I (building-fire v1)" in found[0]


def test_unusable_file_means_no_planset(plans: Path) -> None:
    (plans / "typhoon.yaml").write_text("id: [\n", encoding="utf-8")
    report = lint_plans(plans)
    assert report.planset is None and not report.ok


def test_approvers_come_from_the_directory_role(plans: Path) -> None:
    assert not [w for w in lint_plans(plans).warnings if "plan_approver" in w.message]  # the shipped set
    people = plans / "directory" / "people.yaml"
    text = people.read_text(encoding="utf-8")
    people.write_text(text.replace("    roles: [plan_approver]\n", ""), encoding="utf-8")
    warnings = [str(w) for w in lint_plans(plans).warnings if "plan_approver" in w.message]
    line, col = position(text, "- id: chen-jianhua")
    assert f"{people}:{line}:{col + 2}: warning: people[0]: no person holds the directory role plan_approver: " \
           "no plan can be approved (add `roles: [plan_approver]` to the people who approve plans)" in warnings
    # Every shipped approval now names someone without the role: one warning at each approved_by entry.
    assert sum("does not hold the directory role plan_approver" in w for w in warnings) >= 8
