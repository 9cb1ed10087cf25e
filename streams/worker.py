"""`pingan worker`: recover unfinished work, relay the outbox, and run the faust agents."""

import logging

import faust

from pingan import metrics
from pingan.bootstrap import Services, bootstrap
from pingan.log_witness import LogWitness
from pingan.settings import Settings
from pingan.streams.broker_profile import resolved
from pingan.streams.plan_reload import PlanWatcher
from pingan.streams.producer import make_producer
from pingan.streams.recovery import resume
from pingan.streams.relay import OutboxRelay
from pingan.streams.scheduler import Scheduler
from pingan.streams.topics import ensure_topics

log = logging.getLogger(__name__)


def prepare(services: Services) -> OutboxRelay:
    """Topics, recovery and the relay: everything the agents need before they consume."""
    settings = services.settings
    bootstrap_servers = settings.kafka_bootstrap_servers
    if not bootstrap_servers:
        raise SystemExit("KAFKA_BOOTSTRAP_SERVERS is not set (use `pingan up` for the embedded broker)")
    ensure_topics(bootstrap_servers, settings)
    producer = make_producer(bootstrap_servers)
    try:
        resume(services.store, services.channels, producer, settings)
    finally:
        producer.close(timeout=5)
    relay = OutboxRelay(services.store, bootstrap_servers, settings.relay_poll_interval_s)
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
    relay = prepare(services)
    watcher = PlanWatcher(services.settings.plans_dir, on_reload=lambda plans: setattr(services, "plans", plans),
                          interval_s=services.settings.plan_reload_interval_s)
    watcher.start()
    scheduler = Scheduler(services, services.settings.kafka_bootstrap_servers or "")
    scheduler.start()
    witness = LogWitness(services.store, services.settings)
    witness.start()
    app = build_pipeline(services)
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
        services.close()
