"""docs/deploy.md says what the static deploy/ checks (tests/integration/test_deploy_*.py) did not run."""

from tests.fixtures.deploy import ROOT


def test_docs_state_what_was_not_run() -> None:
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert "not run" in text.lower() or "not validated" in text.lower()
    for must in ("partition", "dedup_key", "PINGAN_DATABASE_URL", "KAFKA_BOOTSTRAP_SERVERS"):
        assert must in text, must
