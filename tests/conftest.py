"""Shared fixtures. Each fixture module lives in tests/fixtures/ and is loaded here."""

pytest_plugins = [
    "tests.fixtures.broker",
    "tests.fixtures.database",
    "tests.fixtures.twilio_server",
    "tests.fixtures.stack",
    "tests.fixtures.deploy",
]
