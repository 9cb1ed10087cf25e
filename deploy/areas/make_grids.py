"""Generate the sample district's grids (网格) and their grid officers (网格员), reproducibly.

    python deploy/areas/make_grids.py            # rewrites plans/areas/tangjiawan.geojson and
                                                 # plans/directory/people_grid_officers.yaml
    python deploy/areas/make_grids.py --check    # exit 1 when the committed files differ from what it generates

The hand-drawn part of plans/areas/tangjiawan.geojson (the town, its communities, `enclosing`) is kept as it is;
this script replaces the district feature (level `district`) and every grid (level `grid`), which it derives:

- the district, 珠海高新区 (Zhuhai High-tech Zone): the zone and the town are administered as one (区镇合一), so its
  polygon is the town's. Its code 4404HT is this sample's, not an administrative code (the zone has none of its own).
- each community's box is cut into cols x rows equal boxes (GRID_SPLIT; 2 x 2 unless named), so the grids tile
  their community exactly and never overlap. Grid codes are the community code plus 3 digits (001…), numbered west
  to east, then south to north. Names: 唐家社区第一网格 / Tangjia Community Grid 1, aliases 唐家一网格 and the
  landmarks of LANDMARKS (approximate: placed in a grid of their community, not surveyed).
- one fictional grid officer per grid, and one leader per community (its `leaders`; the town's and the district's is
  the mayor), in plans/directory/people_grid_officers.yaml, department `communities`, `area` the grid or community. Their phone numbers are Ofcom's drama range +44 7700 900000-900999 (reserved for fiction, reaches no one):
  the +1 202 555-01NN range people.yaml uses has too few numbers left.

Polygons are APPROXIMATE, like the communities': replace with the district's own GIS layer before real use.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
AREAS = ROOT / "plans" / "areas" / "tangjiawan.geojson"
OFFICERS = ROOT / "plans" / "directory" / "people_grid_officers.yaml"  # read after people.yaml

DISTRICT = {"code": "4404HT", "level": "district", "name_zh": "珠海高新区", "name_en": "Zhuhai High-tech Zone",
            "aliases": ["珠海高新技术产业开发区"]}
TOWN_LEADERS = ("chen-jianhua",)  # 镇长 (people.yaml): the town's and the zone's leader ({area_leader: town})
GRID_SPLIT: dict[str, tuple[int, int]] = {"440402100009": (3, 2)}  # Qi'ao island is the largest community
# Landmarks (real names, approximate places) by (community code, grid number).
LANDMARKS: dict[tuple[str, int], list[str]] = {
    ("440402100001", 2): ["唐绍仪故居", "Tang Shaoyi Former Residence"],
    ("440402100001", 3): ["望慈山"],
    ("440402100005", 2): ["会同古村", "会同村", "Huitong Village"],
    ("440402100009", 1): ["淇澳大桥", "Qi'ao Bridge"],
    ("440402100009", 2): ["白石街", "苏兆征故居", "Su Zhaozheng Former Residence"],
    ("440402100009", 5): ["淇澳红树林", "红树林保护区", "Qi'ao Mangroves"],
    ("440402100010", 3): ["北京师范大学珠海校区", "北师大珠海校区", "BNU Zhuhai"],
    ("440402100011", 1): ["北京理工大学珠海学院", "北理工珠海学院"],
}
CN_DIGITS = "零一二三四五六七八九十"
# Fictional names: surname and given name, each with its pinyin (person ids are names in pinyin).
SURNAMES = [("黄", "huang"), ("梁", "liang"), ("何", "he"), ("郑", "zheng"), ("罗", "luo"), ("谢", "xie"),
            ("冯", "feng"), ("邓", "deng"), ("卢", "lu"), ("苏", "su"), ("蔡", "cai"), ("潘", "pan"), ("杜", "du")]
GIVEN = [("嘉欣", "jiaxin"), ("伟强", "weiqiang"), ("秀英", "xiuying"), ("志坚", "zhijian"), ("慧敏", "huimin"),
         ("国栋", "guodong"), ("少华", "shaohua"), ("丽娟", "lijuan"), ("永康", "yongkang"), ("晓燕", "xiaoyan"),
         ("锦荣", "jinrong"), ("翠珊", "cuishan")]


def chinese_number(n: int) -> str:
    if n <= 10:
        return CN_DIGITS[n]
    tens, ones = divmod(n, 10)
    return ("" if tens == 1 else CN_DIGITS[tens]) + "十" + (CN_DIGITS[ones] if ones else "")


def box(ring: list[list[float]]) -> tuple[float, float, float, float]:
    xs, ys = [p[0] for p in ring], [p[1] for p in ring]
    return min(xs), min(ys), max(xs), max(ys)


def grid_boxes(community: dict) -> list[tuple[float, float, float, float]]:
    x0, y0, x1, y1 = box(community["geometry"]["coordinates"][0])
    cols, rows = GRID_SPLIT.get(community["properties"]["code"], (2, 2))
    w, h = (x1 - x0) / cols, (y1 - y0) / rows
    # Rounded to 1e-6 degrees (~0.1 m); the edges shared with neighbours are computed the same way, so they match.
    return [(round(x0 + c * w, 6), round(y0 + r * h, 6), round(x0 + (c + 1) * w, 6), round(y0 + (r + 1) * h, 6))
            for r in range(rows) for c in range(cols)]


def polygon(b: tuple[float, float, float, float]) -> dict:
    x0, y0, x1, y1 = b
    return {"type": "Polygon", "coordinates": [[[x0, y0], [x1, y0], [x1, y1], [x0, y1], [x0, y0]]]}


def officer_names() -> list[tuple[str, str]]:
    """(id, name) pairs, deterministic and distinct: every surname x given name, stepped through by 7 (coprime to
    their count, so each pair once) so that neighbouring grids get different surnames."""
    pairs = [(s, g) for s in SURNAMES for g in GIVEN]
    return [(f"{s[1]}-{g[1]}", s[0] + g[0]) for s, g in (pairs[k * 7 % len(pairs)] for k in range(len(pairs)))]


def generate(current: dict, existing_people: set[str]) -> tuple[dict, list[dict]]:
    kept = [f for f in current["features"] if f["properties"].get("level") not in ("district", "grid")]
    town = next(f for f in kept if f["properties"].get("level") == "town")
    town["properties"]["parent"] = DISTRICT["code"]
    town["properties"]["leaders"] = list(TOWN_LEADERS)
    district = {"type": "Feature", "properties": {**DISTRICT, "leaders": list(TOWN_LEADERS)},
                "geometry": town["geometry"]}
    names = iter(n for n in officer_names() if n[0] not in existing_people)
    grids, officers = [], []
    communities = [f for f in kept if f["properties"].get("level") == "community"]
    for community in communities:
        props = community["properties"]
        short_zh = props["name_zh"].removesuffix("社区")
        for n, b in enumerate(grid_boxes(community), start=1):
            code = f"{props['code']}{n:03d}"
            person_id, person_name = next(names)
            grids.append({"type": "Feature", "properties": {
                "code": code, "level": "grid", "parent": props["code"],
                "name_zh": f"{props['name_zh']}第{chinese_number(n)}网格", "name_en": f"{props['name_en']} Grid {n}",
                "aliases": [f"{short_zh}{chinese_number(n)}网格", *LANDMARKS.get((props["code"], n), [])],
                "officers": [person_id]}, "geometry": polygon(b)})
            officers.append({"id": person_id, "name": person_name, "grid": code,
                             "title_zh": f"{grids[-1]['properties']['name_zh']}网格员",
                             "title_en": f"Grid Officer, {grids[-1]['properties']['name_en']}",
                             "phone": f"+447700900{100 + len(officers)}"})
    for community in communities:  # after the grid officers, so that adding leaders renamed no officer
        props = community["properties"]
        person_id, person_name = next(names)
        props["leaders"] = [person_id]
        officers.append({"id": person_id, "name": person_name, "grid": props["code"],
                         "title_zh": f"{props['name_zh']}党委书记、居委会主任",
                         "title_en": f"Party Secretary and Director, {props['name_en']}",
                         "phone": f"+447700900{100 + len(officers)}"})
    out = {k: v for k, v in current.items() if k not in ("features", "grids_note")}
    out["grids_note"] = (
        "Hierarchy: district (4404HT 珠海高新区, administered as one with the town, so the same polygon) -> town "
        "-> communities -> grids. The district feature, every grid (level grid: the community code plus 3 digits, "
        "equal boxes tiling their community), the grids' officers and the areas' leaders are GENERATED by "
        "deploy/areas/make_grids.py: edit the script, not this file. Checked by `pingan plans lint`.")
    out["features"] = [kept[0], district, *kept[1:], *grids]
    return out, officers


def officers_yaml(officers: list[dict]) -> str:
    lines = [
        "# 唐家湾镇网格员 — Tangjiawan's grid officers (网格员), one per grid of plans/areas/tangjiawan.geojson.",
        "# Then each community's leader (社区党委书记、居委会主任), the community's `leaders` there ({area_leader: community}).",
        "# GENERATED by deploy/areas/make_grids.py: edit the script, not this file. Fictional people; phone numbers are",
        "# in Ofcom's drama range +44 7700 900000-900999, reserved for fiction (reaches no one). `area` is the grid the",
        "# officer covers: a report they send is placed there when it names no better place.",
        "people:",
    ]
    for o in officers:
        lines += [
            f"  - id: {o['id']}",
            f"    name: {o['name']}",
            "    title:",
            f"      zh: {o['title_zh']}",
            f"      en: {o['title_en']}",
            "    department: communities",
            f"    area: \"{o['grid']}\"",
            f"    contacts: {{sms: \"{o['phone']}\"}}",
        ]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed files are not up to date")
    args = parser.parse_args()
    import yaml  # the project's dependency; read here so --help needs nothing

    people = yaml.safe_load((ROOT / "plans" / "directory" / "people.yaml").read_text(encoding="utf-8"))["people"]
    areas, officers = generate(json.loads(AREAS.read_text(encoding="utf-8")), {p["id"] for p in people})
    texts = {AREAS: json.dumps(areas, ensure_ascii=False, indent=1) + "\n", OFFICERS: officers_yaml(officers)}
    stale = [p for p, t in texts.items() if not p.exists() or p.read_text(encoding="utf-8") != t]
    if args.check:
        for p in stale:
            print(f"{p.relative_to(ROOT)} is not what deploy/areas/make_grids.py generates", file=sys.stderr)
        return 1 if stale else 0
    for p in stale:
        p.write_text(texts[p], encoding="utf-8")
    print(f"{len([f for f in areas['features'] if f['properties']['level'] == 'grid'])} grids, "
          f"{len(officers)} officers; wrote {', '.join(str(p.relative_to(ROOT)) for p in stale) or 'nothing'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
