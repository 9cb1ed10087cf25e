"""`pingan areas [CODE]` as the duty officer runs it (issue 18, part 5): the hierarchy as a tree with grid officers,
and one community's open incidents and counts, over a store the API's integration test rig fills (triage places
the reports, the trend stage's store counts them)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from pingan.settings import Settings
from tests.integration.test_areas_http import GRID1, TANGJIA, AreasRig


def pingan(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PINGAN_DATA_DIR": str(tmp / "var")}
    env.pop("PINGAN_DATABASE_URL", None)
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "areas", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


def test_areas_prints_the_tree_and_a_community(tmp_path: Path) -> None:
    (tmp_path / "var").mkdir()
    rig = AreasRig(tmp_path / "var", Settings(data_dir=tmp_path / "var").resolved_database_url)
    rig.store.close()

    tree = pingan(tmp_path)
    assert tree.returncode == 0, tree.stderr
    assert "64 areas" in tree.stdout
    assert any(line.startswith("      " + GRID1) and "huang-jiaxin" in line for line in tree.stdout.splitlines())

    one = pingan(tmp_path, TANGJIA)
    assert one.returncode == 0, one.stderr
    assert "path: 珠海高新区 → 唐家湾镇 → 唐家社区" in one.stdout
    assert "open incidents (2):" in one.stdout and rig.fire in one.stdout and rig.cluster in one.stdout
    assert rig.drill not in one.stdout
    assert "last 24h: 4 reports, 2 incidents" in one.stdout
    assert "last 7d: 5 reports, 2 incidents" in one.stdout
    assert rig.drill in pingan(tmp_path, GRID1, "--exercise").stdout

    as_json = json.loads(pingan(tmp_path, TANGJIA, "--json").stdout)
    assert {i["id"] for i in as_json["open_incidents"]} == {rig.fire, rig.cluster}

    unknown = pingan(tmp_path, "999999")
    assert unknown.returncode == 1 and "area '999999' not found" in unknown.stderr
