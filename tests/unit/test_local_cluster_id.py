"""deploy/kafka/local-cluster's cluster id: never one that starts with "-". One in 64 random ids does, and
kafka-storage's argument parser takes it for an option ("argument --cluster-id/-t: expected one argument"): a CI
run lost its Kafka cluster so. The script's Python snippet is run here with uuid4 made to give such an id first."""

import contextlib
import io
import re
import uuid
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "deploy" / "kafka" / "local-cluster"


def snippet() -> str:
    found = re.search(r"cluster_id=\"\$\(\"\$PYTHON\" -c '(.*?)'\)\"", SCRIPT.read_text(), re.S)
    assert found, "the cluster-id snippet moved"
    return found.group(1)


def test_an_id_starting_with_a_dash_is_drawn_again(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    dashed = uuid.UUID(bytes=b"\xf8" + b"\x01" * 15)  # base64 starts with "-" (62 = 0b111110)
    plain = uuid.UUID(bytes=b"\x10" + b"\x02" * 15)
    draws = iter([dashed, dashed, plain])
    monkeypatch.setattr(uuid, "uuid4", lambda: next(draws))
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(snippet(), {})  # noqa: S102 - the script's own code, read from the repository
    assert out.getvalue().strip() == "EAICAgICAgICAgICAgICAg"
    assert not out.getvalue().startswith("-")
