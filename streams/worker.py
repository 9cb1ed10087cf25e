"""`pingan worker`: recover unfinished work, relay the outbox, and run the faust agents."""

import logging
import threading

import faust

from pingan import metrics
from pingan.bootstrap import Services, bootstrap
from pingan.log_witness import LogWitness
from pingan.settings import Settings
from pingan.sitrep_daily import DailySitreps
from pingan.streams.broker_profile import resolved
from pingan.streams.plan_reload import PlanWatcher
from pingan.streams.producer import make_producer
from pingan.streams.recovery import resume
from pingan.streams.relay import OutboxRelay
from pingan.streams.scheduler import Scheduler
from pingan.streams.topics import ensure_topics

log = logging.getLogger(__name__)


def prepare(services: Services, resumed_once: threading.Event | None = None) -> OutboxRelay:
    """Topics, recovery and the relay: everything the agents need before they consume.

    With `resumed_once` (the takeover re-publish runs, streams/takeover.py), the start-up recovery only settles
    notifications left `sending` and publishes nothing, and the relay waits for the first assignment's re-publish:
    that one is the backlog's single copy. Publishing here as well sent a broker restart's backlog twice (and the
    rows accepted during the outage three times, with the relay), and every copy costs a triage replay and its
    re-emits while the incidents wait (issue 14, finding 8)."""
    settings = services.settings
    bootstrap_servers = settings.kafka_bootstrap_servers
    if not bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set (use `pingan up` for the embedded broker)")
    ensure_topics(bootstrap_servers, settings)
    producer = make_producer(bootstrap_servers)
    try:
        resume(services.store, services.channels, producer, settings, publish=resumed_once is None)
    finally:
        producer.close(timeout=5)
    relay = OutboxRelay(services.store, bootstrap_servers, settings.relay_poll_interval_s, after=resumed_once)
    relay.start()
    return relay


def run_worker(settings: Settings | None = None) -> None:
    from pingan.streams.pipeline import build_pipeline  # faust wiring is only needed here

    services = bootstrap(settings)
    if not services.settings.kafka_bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set (use `pingan up` for the embedded broker)")
    # Which broker, and what follows from it (streams/broker_profile.py): replication, fetch wait, idempotence and
    # which tansu workarounds run. Said once in the log so an operator sees what was chosen.
    services.settings, profile = resolved(services.settings)
    log.info("%s", profile.describe())
    metrics.serve_worker(services.settings.metrics_port, services.settings.http_host,
                         services.settings.kafka_bootstrap_servers or "")
    app = build_pipeline(services)  # built before it runs: its first assignment gates the relay
    relay = prepare(services, getattr(app, "resumed_once", None))
    watcher = PlanWatcher(services.settings.plans_dir, on_reload=services.reload_plans,
                          interval_s=services.settings.plan_reload_interval_s,
                          loaded_since_ns=services.plans_loaded_ns)
    watcher.start()
    scheduler = Scheduler(services, services.settings.kafka_bootstrap_servers or "")
    scheduler.start()
    witness = LogWitness(services.store, services.settings)
    witness.start()
    daily_sitreps = DailySitreps(services.store, services.settings, services.channels)  # off unless sitrep_daily_at
    daily_sitreps.start()
    if services.settings.metrics_port:
        metrics.register_partition_lag(app, services.settings.topic_prefix)
    worker = faust.Worker(app, loglevel=services.settings.log_level.lower(), quiet=True)
    # faust's terminal spinner sets the root logger to DEBUG and costs ~16% of the worker's CPU building
    # records nobody prints (measured with py-spy in bench/pipeline.py).
    worker.spinner = None
    try:
        worker.execute_from_commandline()
    finally:
        relay.stop()
        watcher.stop()
        scheduler.stop()
        witness.stop()
        daily_sitreps.stop()
        services.close()
