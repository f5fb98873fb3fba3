"""The names the connector's telemetry is found under: metrics, their attributes, spans.

One home, read by the instruments (`instruments.py`), the alerts in `infra/core/monitor/alerts.bicep`
(a test checks that every metric and attribute an alert queries is one of these) and the README. Azure
Monitor keeps a metric under its name in `customMetrics` (`name`, `value`, `valueCount`, and its
attributes in `customDimensions`); a log record's attributes arrive in `customDimensions` of `traces`.
"""

from __future__ import annotations

from typing import Final

METER: Final = "connector"
TRACER: Final = "connector"

# --- metrics ------------------------------------------------------------------------------------------------
# Graph's change and lifecycle notifications, one count per notification: `kind` change|lifecycle,
# `outcome` accepted|forged|malformed.
NOTIFICATIONS: Final = "connector.notifications"
# The webhook function's own time from request to answer (ms), `kind` change|lifecycle: Graph allows 3 s.
WEBHOOK_DURATION: Final = "connector.webhook.duration"
# Queued jobs run: `queue`, `job` (the kind), `outcome` ok|failed|dropped (a message with no job).
JOBS: Final = "connector.jobs"
JOB_DURATION: Final = "connector.jobs.duration"  # ms, `queue`, `job`
# A job that failed on its last dequeue (the host moves its message to `<queue>-poison`): `queue`.
JOBS_POISONED: Final = "connector.jobs.poisoned"
# A user's sync run ended: `mode` (migrate, sync, resync, notified, ...), `outcome`
# synced|held (the mass-deletion guard)|error|throttled (queued again).
SYNC_RUNS: Final = "connector.sync.runs"
# Changes appended to a tenant's feed: `tenant`, `type` (event.created, tenant.consent_revoked, ...).
CHANGES_PUBLISHED: Final = "connector.changes.published"
# Every HTTP answer Graph gave (retries each count): `method`, `status`.
GRAPH_REQUESTS: Final = "connector.graph.requests"
# Graph's 429 answers: `method`.
GRAPH_THROTTLES: Final = "connector.graph.throttles"
# Posts to the host's webhook: `outcome` delivered|failed; the duration of each post (ms).
DELIVERIES: Final = "connector.deliveries"
DELIVERY_DURATION: Final = "connector.deliveries.duration"
# Ranges written as dead letters (the host's webhook never took them): `tenant`.
DEAD_LETTERS: Final = "connector.deliveries.dead_lettered"
# A tenant's changes not yet delivered to the host's webhook (a gauge, `tenant`): its feed's head less the
# last change delivered, observed after each post to the host (taken or not), whichever worker made it.
FEED_BACKLOG: Final = "connector.feed.backlog"
# Subscription renewals with Graph: `outcome` renewed|failed.
SUBSCRIPTION_RENEWALS: Final = "connector.subscriptions.renewals"
# When the renewal job lists a tenant's subscriptions: how many expire within a day, `tenant`.
SUBSCRIPTIONS_EXPIRING: Final = "connector.subscriptions.expiring"

METRICS: Final = frozenset(
    {
        NOTIFICATIONS,
        WEBHOOK_DURATION,
        JOBS,
        JOB_DURATION,
        JOBS_POISONED,
        SYNC_RUNS,
        CHANGES_PUBLISHED,
        GRAPH_REQUESTS,
        GRAPH_THROTTLES,
        DELIVERIES,
        DELIVERY_DURATION,
        DEAD_LETTERS,
        FEED_BACKLOG,
        SUBSCRIPTION_RENEWALS,
        SUBSCRIPTIONS_EXPIRING,
    }
)
# Attributes the metrics carry (and the bound log context: tenant, user, invocation_id, function, job).
ATTRIBUTES: Final = frozenset(
    {"kind", "outcome", "queue", "job", "mode", "tenant", "type", "method", "status", "user", "invocation_id"}
)
