"""The connector's metric instruments and tracer, built once from the configured providers."""

from __future__ import annotations

from dataclasses import dataclass

from opentelemetry.metrics import Counter, Histogram, Meter, MeterProvider
from opentelemetry.metrics import _Gauge as Gauge  # the synchronous gauge, still underscored in the API
from opentelemetry.trace import Tracer, TracerProvider

from shared.telemetry import names


@dataclass(frozen=True, slots=True)
class Instruments:
    tracer: Tracer
    notifications: Counter
    webhook_duration: Histogram
    jobs: Counter
    job_duration: Histogram
    jobs_poisoned: Counter
    sync_runs: Counter
    changes_published: Counter
    graph_requests: Counter
    graph_throttles: Counter
    deliveries: Counter
    delivery_duration: Histogram
    dead_letters: Counter
    feed_backlog: Gauge
    subscription_renewals: Counter
    subscriptions_expiring: Gauge

    @classmethod
    def build(cls, tracer_provider: TracerProvider, meter_provider: MeterProvider) -> Instruments:
        meter: Meter = meter_provider.get_meter(names.METER)
        return cls(
            tracer=tracer_provider.get_tracer(names.TRACER),
            notifications=meter.create_counter(names.NOTIFICATIONS, "{notification}", "Graph notifications"),
            webhook_duration=meter.create_histogram(names.WEBHOOK_DURATION, "ms", "webhook answer time"),
            jobs=meter.create_counter(names.JOBS, "{job}", "queued jobs run"),
            job_duration=meter.create_histogram(names.JOB_DURATION, "ms", "a job's run time"),
            jobs_poisoned=meter.create_counter(names.JOBS_POISONED, "{job}", "jobs failed on the last try"),
            sync_runs=meter.create_counter(names.SYNC_RUNS, "{run}", "users' sync runs by outcome"),
            changes_published=meter.create_counter(names.CHANGES_PUBLISHED, "{change}", "changes published"),
            graph_requests=meter.create_counter(names.GRAPH_REQUESTS, "{request}", "Graph answers by status"),
            graph_throttles=meter.create_counter(names.GRAPH_THROTTLES, "{request}", "Graph's 429 answers"),
            deliveries=meter.create_counter(names.DELIVERIES, "{post}", "posts to the host's webhook"),
            delivery_duration=meter.create_histogram(names.DELIVERY_DURATION, "ms", "a post's answer time"),
            dead_letters=meter.create_counter(names.DEAD_LETTERS, "{range}", "ranges dead-lettered"),
            feed_backlog=meter.create_gauge(names.FEED_BACKLOG, "{change}", "changes not yet delivered"),
            subscription_renewals=meter.create_counter(names.SUBSCRIPTION_RENEWALS, "{renewal}", "renewals"),
            subscriptions_expiring=meter.create_gauge(
                names.SUBSCRIPTIONS_EXPIRING, "{subscription}", "subscriptions expiring within a day"
            ),
        )
