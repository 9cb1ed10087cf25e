"""A real faust worker for test_broker.py: forwards incidents.raw to incidents, same key, same bytes.

Configured by the environment like pingan itself (KAFKA_BOOTSTRAP_SERVERS, PINGAN_*). On the first message
it writes the live aiokafka consumer's fetch wait to $FORWARD_REPORT, so the test can see that the setting
reached the consumer that faust actually runs.
"""

import json
import os
from pathlib import Path

import faust

from pingan.settings import Settings
from pingan.streams import topics
from pingan.streams.faust_app import app_topics, create_app


def fetch_wait_report(app: faust.App) -> dict[str, int]:
    consumer = app.consumer._thread._consumer  # type: ignore[attr-defined]
    # The Fetcher copies the value in start(): check both, so a late assignment would show up here.
    return {"consumer": consumer._fetch_max_wait_ms, "fetcher": consumer._fetcher._fetch_max_wait_ms}


def main() -> None:
    settings = Settings()
    app = create_app(settings)
    t = app_topics(app, settings)
    report = Path(os.environ["FORWARD_REPORT"])

    @app.agent(t[topics.RAW], name="forward")
    async def forward(stream: faust.StreamT) -> None:
        async for key, value in stream.items():
            if not report.exists():
                report.write_text(json.dumps(fetch_wait_report(app)))
            await t[topics.INCIDENTS].send(key=key, value=value)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
