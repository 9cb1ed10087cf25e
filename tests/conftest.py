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
        # schemathesis (4.x on pytest 9) names each operation's item `test[GET /path]` but leaves every one the
        # function's node id; xdist schedules by node id, so all but one operation would silently not run.
        if "[" in item.name and not item.nodeid.endswith("]") and item.parent is not None:
            if hasattr(item.parent, "id"):  # pytest 9: a structured id
                item._id = item.parent.id.child(item.name)
            else:  # pytest 8
                item._nodeid = f"{item.parent.nodeid}::{item.name}"
        path = item.nodeid.split("::", 1)[0]
        group = "kafka" if path.startswith("tests/kafka/") else path
        item.add_marker(pytest.mark.xdist_group(group))
