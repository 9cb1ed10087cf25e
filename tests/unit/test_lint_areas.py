"""The area rules of `pingan plans lint` (handlers/plans/lint_areas.py), each on a small bad file: the problem names
the file, the feature's line, the feature and what is wrong. And the shipped hierarchy passes them."""

import json
import shutil
from pathlib import Path

from pingan.handlers.plans.lint import lint_plans
from pingan.handlers.plans.lint_areas import area_problems
from pingan.handlers.plans.reader import read_plans
from pingan.plans import PLANS_DIR

PEOPLE = """people:
  - id: wang-wu
    name: 王五
    contacts: {sms: "+12025550150"}
"""


def box(x0: float, y0: float, x1: float, y1: float) -> list[list[list[float]]]:
    return [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]


def feature(code: str, level: str, parent: str | None, rings: object, **props: object) -> dict:
    return {"type": "Feature", "properties": {"code": code, "level": level, "parent": parent,
                                              "name_zh": f"区{code}", **props},
            "geometry": {"type": "Polygon", "coordinates": rings}}


def good() -> list[dict]:
    return [
        feature("T", "town", None, box(0, 0, 2, 1)),
        feature("C1", "community", "T", box(0, 0, 1, 1)),
        feature("C2", "community", "T", box(1, 0, 2, 1)),
        feature("C1001", "grid", "C1", box(0, 0, 0.5, 1), officers=["wang-wu"]),
        feature("C1002", "grid", "C1", box(0.5, 0, 1, 1), officers=["wang-wu"]),
    ]


def lint(tmp_path: Path, features: list[dict], people: str = PEOPLE) -> tuple[list[str], list[str], Path]:
    plans = tmp_path / "plans"
    (plans / "areas").mkdir(parents=True)
    (plans / "directory").mkdir()
    (plans / "directory" / "people.yaml").write_text(people, encoding="utf-8")
    path = plans / "areas" / "d.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}, ensure_ascii=False, indent=1),
                    encoding="utf-8")
    errors, warnings = area_problems(read_plans(plans))
    return [str(e) for e in errors], [str(w) for w in warnings], path


def line_of(path: Path, n: int) -> int:
    """The line of the n-th Feature of the file."""
    lines = [i for i, text in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if '"Feature"' in text]
    return lines[n]


def test_a_good_file_has_no_problem(tmp_path: Path) -> None:
    assert lint(tmp_path, good())[:2] == ([], [])


def test_a_ring_that_does_not_close(tmp_path: Path) -> None:
    features = good()
    features[3]["geometry"]["coordinates"][0][-1] = [0.0, 0.5]
    errors, _, path = lint(tmp_path, features)
    assert errors == [f"{path}:{line_of(path, 3)}:1: features[3] (C1001 区C1001): ring 0 is not closed: its last "
                      "position [0.0, 0.5] does not repeat its first [0, 0]"]


def test_a_ring_too_short_and_a_self_crossing_polygon(tmp_path: Path) -> None:
    features = good()
    features[3]["geometry"]["coordinates"] = [[[0, 0], [0.5, 0], [0, 0]]]
    features[4]["geometry"]["coordinates"] = [[[0.5, 0], [1, 1], [1, 0], [0.5, 1], [0.5, 0]]]  # a bow tie
    errors, _, path = lint(tmp_path, features)
    assert errors[0] == f"{path}:{line_of(path, 3)}:1: features[3] (C1001 区C1001): ring 0 has 3 positions: a ring " \
                        "needs at least 4"
    assert errors[1].startswith(f"{path}:{line_of(path, 4)}:1: features[4] (C1002 区C1002): is not a valid polygon: "
                                "Self-intersection")


def test_overlapping_siblings(tmp_path: Path) -> None:
    features = good()
    features[4]["geometry"]["coordinates"] = box(0.25, 0, 1, 1)
    errors, _, path = lint(tmp_path, features)
    assert errors == [f"{path}:{line_of(path, 4)}:1: features[4] (C1002 区C1002): overlaps its sibling C1001 "
                      f"({path}:{line_of(path, 3)}) by 33.3% of its area"]


def test_siblings_sharing_an_edge_do_not_overlap_and_cousins_may(tmp_path: Path) -> None:
    features = good()
    features.append(feature("C2001", "grid", "C2", box(1, 0, 2, 1), officers=["wang-wu"]))
    assert lint(tmp_path, features)[0] == []


def test_a_grid_outside_its_community(tmp_path: Path) -> None:
    features = good()
    features[4]["geometry"]["coordinates"] = box(0.5, 0, 1.5, 1)  # half of it in C2
    errors, _, path = lint(tmp_path, features)
    assert errors == [f"{path}:{line_of(path, 4)}:1: features[4] (C1002 区C1002): the grid does not lie within its "
                      "parent C1 区C1: 50.0% of it is outside"]


def test_a_code_used_twice_and_a_missing_code(tmp_path: Path) -> None:
    features = good()
    features[4]["properties"]["code"] = "C1001"
    features.append(feature("", "grid", "C2", box(1, 0, 2, 1), officers=["wang-wu"]))
    errors, _, path = lint(tmp_path, features)
    assert f"{path}:{line_of(path, 4)}:1: features[4] (C1001 区C1002): code C1001 is used twice (first at " \
           f"{path}:{line_of(path, 3)}, features[3] (C1001 区C1001))" in errors
    assert f"{path}:{line_of(path, 5)}:1: features[5] (区): the feature has no code" in errors


def test_a_parent_that_does_not_exist_and_a_loop(tmp_path: Path) -> None:
    features = good()
    features[4]["properties"]["parent"] = "C9"
    features[0]["properties"]["parent"] = "C1"  # T -> C1 -> T
    errors, _, path = lint(tmp_path, features)
    assert f"{path}:{line_of(path, 4)}:1: features[4] (C1002 区C1002): parent C9 is no area of the files and no " \
           "enclosing area" in errors
    assert f"{path}:{line_of(path, 0)}:1: features[0] (T 区T): its parent chain loops back at T" in errors


def test_an_officer_who_is_not_in_the_directory_and_a_grid_without_one(tmp_path: Path) -> None:
    features = good()
    features[3]["properties"]["officers"] = ["wang-liu"]
    features[4]["properties"]["officers"] = []
    errors, warnings, path = lint(tmp_path, features)
    assert errors == [f"{path}:{line_of(path, 3)}:1: features[3] (C1001 区C1001): grid officer 'wang-liu' is no "
                      f"person of the directory ({path.parent.parent / 'directory'})"]
    assert warnings == [f"{path}:{line_of(path, 4)}:1: warning: features[4] (C1002 区C1002): the grid names no grid "
                        "officer (officers: [person id, …])"]


def test_a_person_registered_in_an_unknown_area(tmp_path: Path) -> None:
    errors, _, path = lint(tmp_path, good(), PEOPLE + '    area: "C7"\n')
    people = path.parent.parent / "directory" / "people.yaml"
    assert errors == [f"{people}:5:11: area: C7 is no area of {path.parent}"]


def test_not_json_and_not_a_feature_collection(tmp_path: Path) -> None:
    _, _, path = lint(tmp_path, good())
    path.write_text('{"type": "FeatureCollection",\n "features": [\n', encoding="utf-8")
    errors, _ = area_problems(read_plans(path.parent.parent))
    assert len(errors) == 1 and str(errors[0]).startswith(f"{path}:3:1: not a readable JSON file")
    path.write_text('{"type": "Feature"}', encoding="utf-8")
    assert [str(e) for e in area_problems(read_plans(path.parent.parent))[0]] == [
        f"{path}:1:1: not a GeoJSON FeatureCollection with a features list"]


def test_the_shipped_hierarchy_passes_and_a_broken_copy_is_refused(tmp_path: Path) -> None:
    plans = tmp_path / "plans"
    shutil.copytree(PLANS_DIR, plans, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    report = lint_plans(plans)
    assert report.ok and not [w for w in report.warnings if "areas" in w.file]
    district = json.loads((plans / "areas" / "tangjiawan.geojson").read_text(encoding="utf-8"))
    grids = [f for f in district["features"] if f["properties"]["level"] == "grid"]
    assert len(grids) >= 40 and all(f["properties"]["officers"] for f in grids)
    assert all(f["properties"]["leaders"] for f in district["features"] if f["properties"]["level"] == "community")
    officers = plans / "directory" / "people_grid_officers.yaml"
    officers.write_text(officers.read_text(encoding="utf-8").replace("id: huang-jiaxin", "id: huang-jiaxi"),
                        encoding="utf-8")
    errors = [str(e) for e in lint_plans(plans).errors]
    assert len(errors) == 1 and "features[14] (440402100001001 唐家社区第一网格): grid officer 'huang-jiaxin' is " \
                                "no person of the directory" in errors[0]


def test_a_level_outside_the_hierarchy_is_a_warning(tmp_path: Path) -> None:
    features = good()
    features[2]["properties"]["level"] = "street"
    _, warnings, path = lint(tmp_path, features)
    assert warnings == [f"{path}:{line_of(path, 2)}:1: warning: features[2] (C2 区C2): level 'street' is none of "
                        "district, town, sub_district, community, grid"]


def test_the_committed_grids_are_what_the_generator_makes() -> None:
    """plans/areas/tangjiawan.geojson and the officers' file are generated: hand edits would be lost at the next
    run, so the committed files must be exactly its output (`python deploy/areas/make_grids.py --check`)."""
    import subprocess
    import sys

    script = PLANS_DIR.parent / "deploy" / "areas" / "make_grids.py"
    done = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
