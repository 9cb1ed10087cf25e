"""`pingan intake test FILE --token NAME`: the file as the HTTP route would take it from that intake token, with the
token's bindings (web/intake_tokens.py) applied: a CAP <sender> or an Alertmanager externalURL the token may not use
is the route's 403, naming the field; a named Alertmanager token's keys are in its namespace. Run as the operator
runs it, a subprocess; the messages are the shared samples (../shared/samples), read where they are.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.fixtures.cap_chain import CAP_DIR, QIAO_AREA, SENDER, cap_message

AM_DIR = CAP_DIR.parent / "alertmanager"
pytestmark = pytest.mark.skipif(not CAP_DIR.is_dir() or not AM_DIR.is_dir(),
                                reason=f"samples not found at {CAP_DIR.parent}")
CMA = "12379@cma.gov.cn"
AM_URL = "http://docker.for.mac.host.internal:9093"  # msteams-firing-1-alert.json's externalURL
TOKENS = (f"api=t-api,cap:nws=t-nws|{SENDER},cap:cma=t-cma|{CMA},alertmanager:prod=t-prod|{AM_URL},"
          "alertmanager:lab=t-lab|https://am.lab.example:9093")


def intake_test(tmp_path: Path, *args: str, tokens: str | None = TOKENS) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PINGAN_")}
    env.update(PYTHONIOENCODING="utf-8", PINGAN_DATA_DIR=str(tmp_path / "var"))
    if tokens is not None:
        env["PINGAN_INTAKE_TOKENS"] = tokens
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "intake", "test", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)


@pytest.fixture
def cap_file(tmp_path: Path) -> Path:
    path = tmp_path / "nws.xml"  # the NWS thunderstorm warning, <sender> KSTO@NWS.NOAA.GOV, moved into the district
    path.write_bytes(cap_message(area=QIAO_AREA))
    return path


def test_a_cap_sender_the_token_may_not_use_is_refused_naming_the_field(tmp_path: Path, cap_file: Path) -> None:
    done = intake_test(tmp_path, str(cap_file), "--token", "cap:cma")
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stdout == ""
    assert f"{cap_file}: 403 refused: alert.sender: intake token 'cap:cma' may not use sender '{SENDER}'" in done.stderr
    assert f"(it may use: {CMA})" in done.stderr


def test_the_senders_own_token_passes_and_no_token_previews_as_before(tmp_path: Path, cap_file: Path) -> None:
    own = intake_test(tmp_path, str(cap_file), "--token", "cap:nws")
    assert own.returncode == 0, own.stderr
    assert own.stdout.startswith(f"{cap_file}: cap, 1 incident event(s) (as intake token 'cap:nws' would bring it)")
    plain = intake_test(tmp_path, str(cap_file))
    assert plain.returncode == 0, plain.stderr
    assert plain.stdout.startswith(f"{cap_file}: cap, 1 incident event(s)\n")


def test_tokens_from_the_data_dir_file_are_bound_too(tmp_path: Path, cap_file: Path) -> None:
    (tmp_path / "var").mkdir()
    (tmp_path / "var" / "intake-tokens.json").write_text(json.dumps(
        {"api": "a", "cap:cma": "c", "alertmanager": "m", "metrics": "x", "senders": {"cap:cma": [CMA]}}))
    done = intake_test(tmp_path, str(cap_file), "--token", "cap:cma", tokens=None)
    assert done.returncode == 1 and "403 refused: alert.sender" in done.stderr, done.stderr
    assert not (tmp_path / "var" / "intake-tokens.tmp").exists()
    # A box that never ran: `cap` is the token the API would generate (any sender), and nothing is written.
    fresh = tmp_path / "fresh"
    first = intake_test(fresh, str(cap_file), "--token", "cap", tokens=None)
    assert first.returncode == 0, first.stderr
    assert not (fresh / "var").exists()


def test_alertmanager_binding_and_namespace(tmp_path: Path) -> None:
    hook = str(AM_DIR / "msteams-firing-1-alert.json")
    prod = intake_test(tmp_path, hook, "--token", "alertmanager:prod")
    assert prod.returncode == 0, prod.stderr
    assert '"dedup_key": "am:prod:' in prod.stdout and '"am_source": "prod"' in prod.stdout
    lab = intake_test(tmp_path, hook, "--token", "alertmanager:lab")
    assert lab.returncode == 1
    assert f"403 refused: externalURL: intake token 'alertmanager:lab' may not use externalURL '{AM_URL}'" in lab.stderr


def test_an_unknown_token_or_one_for_another_route_is_an_error(tmp_path: Path, cap_file: Path) -> None:
    unknown = intake_test(tmp_path, str(cap_file), "--token", "cap:nobody")
    assert unknown.returncode == 2
    assert "no intake token 'cap:nobody'" in unknown.stderr and "cap:cma, cap:nws" in unknown.stderr
    wrong = intake_test(tmp_path, str(cap_file), "--token", "alertmanager:prod")
    assert wrong.returncode == 1
    assert "401" in wrong.stderr and "alertmanager:prod" in wrong.stderr and "/v1/intake/cap" in wrong.stderr
