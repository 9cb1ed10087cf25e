"""A faust worker with a Table, for tests/kafka/test_faust_table.py: counts the records of incidents.raw per key in
a Table (changelog-backed, memory:// store, so a restarted worker has only the changelog to recover from) and writes
the table's contents to $TABLE_REPORT twice a second once it is running. Configured like pingan itself."""

import json
import os
from pathlib import Path

import faust

from pingan.settings import Settings
from pingan.streams import topics
from pingan.streams.broker_profile import resolved
from pingan.streams.faust_app import app_topics, create_app
from pingan.streams.topics import DEFAULT_PARTITIONS


def main() -> None:
    settings, _ = resolved(Settings())
    app = create_app(settings)
    t = app_topics(app, settings)
    counts = app.Table("counts", default=int, partitions=DEFAULT_PARTITIONS)
    report = Path(os.environ["TABLE_REPORT"])

    @app.agent(t[topics.RAW], name="count")
    async def count(stream: faust.StreamT) -> None:
        async for key, _value in stream.items():
            counts[key] += 1

    @app.timer(0.5)
    async def dump() -> None:  # timers start after table recovery, so this is the recovered state
        tmp = report.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(counts.items())))
        tmp.replace(report)

    faust.Worker(app, loglevel="warning", quiet=True).execute_from_commandline()


if __name__ == "__main__":
    main()
