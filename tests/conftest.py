"""Shared fixtures. Each fixture module lives in tests/fixtures/ and is loaded here."""

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.database",
    "tests.fixtures.twilio_server",
    "tests.fixtures.stack",
    "tests.fixtures.deploy",
]


def pytest_collection_modifyitems(items: list) -> None:  # type: ignore[type-arg]
    """Under pytest-xdist with `--dist loadgroup` (the README's test command), a test file runs on one worker, so its
    module-scoped stacks start once; every test of tests/kafka shares one group, so one worker starts the 3-node
    cluster once. Without xdist the marker does nothing."""
    import pytest

    for item in items:
        path = item.nodeid.split("::", 1)[0]
        group = "kafka" if path.startswith("tests/kafka/") else path
        item.add_marker(pytest.mark.xdist_group(group))
