// Alerts on the connector's own telemetry (shared/telemetry/names.py): log search alerts over the
// metrics the app sends to Application Insights (`customMetrics`: counters arrive as deltas per export
// interval, so `sum(valueSum)` over a window counts what happened in it; a histogram's `valueMax` is the
// slowest in an interval). Each alert fires per tenant or queue where the query splits by one, and
// notifies the given action group (none given: the alerts still show in the portal).
param applicationInsightsName string
param location string
param tags object = {}
@description('Resource id of the action group the alerts notify. Empty: alerts fire without notifying anyone.')
param actionGroupId string = ''

var actionGroups = empty(actionGroupId) ? [] : [
  actionGroupId
]

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

var alerts = [
  {
    name: 'dead-letters'
    displayName: 'Connector: dead letters present'
    description: 'The host\'s webhook refused a range of changes for good (written in the last day, per tenant). They stay in the pull feed; list and redeliver them with GET/POST …/dead-letters.'
    severity: 2
    frequency: 'PT1H'
    window: 'P1D'
    dimension: 'tenant'
    query: '''
customMetrics
| where name == "connector.deliveries.dead_lettered"
| extend tenant = tostring(customDimensions.tenant)
| summarize letters = sum(valueSum) by tenant
| where letters > 0
'''
  }
  {
    name: 'poison-messages'
    displayName: 'Connector: poison messages present'
    description: 'A job failed on its last try and the host moved its message to the queue\'s -poison twin (in the last day, per queue). See the job\'s exception in the traces of its operation.'
    severity: 2
    frequency: 'PT1H'
    window: 'P1D'
    dimension: 'queue'
    query: '''
customMetrics
| where name == "connector.jobs.poisoned"
| extend queue = tostring(customDimensions.queue)
| summarize poisoned = sum(valueSum) by queue
| where poisoned > 0
'''
  }
  {
    name: 'subscription-renewals-failing'
    displayName: 'Connector: subscription renewals failing'
    description: 'At least one in ten renewals of Graph subscriptions failed in the last six hours (the renewal timer runs every six). Users whose subscription lapses get no notifications until the nightly resync recreates it.'
    severity: 2
    frequency: 'PT1H'
    window: 'PT6H'
    dimension: ''
    query: '''
customMetrics
| where name == "connector.subscriptions.renewals"
| extend outcome = tostring(customDimensions.outcome)
| summarize failed = sumif(valueSum, outcome == "failed"), renewals = sum(valueSum)
| where failed > 0 and failed >= 0.1 * renewals
'''
  }
  {
    name: 'consent-revoked'
    displayName: 'Connector: a tenant\'s consent was revoked'
    description: 'Microsoft 365 refused the app for a tenant (consent revoked, service principal disabled, a Conditional Access policy): its sync stopped. An administrator of that organisation must reauthorize (POST …/reauthorize).'
    severity: 1
    frequency: 'PT15M'
    window: 'PT15M'
    dimension: 'tenant'
    query: '''
customMetrics
| where name == "connector.changes.published"
| extend tenant = tostring(customDimensions.tenant), type = tostring(customDimensions.type)
| where type == "tenant.consent_revoked"
| summarize revoked = sum(valueSum) by tenant
| where revoked > 0
'''
  }
  {
    name: 'webhook-answer-time'
    displayName: 'Connector: Graph webhook answer time near 3 s'
    description: 'The Graph notification webhook took over 2 s to answer in the last five minutes. Graph allows 3 s before it counts a notification as failed, and drops the subscription\'s notifications after repeated failures.'
    severity: 2
    frequency: 'PT5M'
    window: 'PT5M'
    dimension: ''
    query: '''
customMetrics
| where name == "connector.webhook.duration"
| summarize slowest_ms = max(valueMax)
| where slowest_ms > 2000
'''
  }
]

resource rules 'Microsoft.Insights/scheduledQueryRules@2022-06-15' = [for alert in alerts: {
  name: 'alert-${alert.name}-${applicationInsightsName}'
  location: location
  tags: tags
  properties: {
    displayName: alert.displayName
    description: alert.description
    severity: alert.severity
    enabled: true
    scopes: [
      applicationInsights.id
    ]
    evaluationFrequency: alert.frequency
    windowSize: alert.window
    autoMitigate: true
    criteria: {
      allOf: [
        {
          query: alert.query
          timeAggregation: 'Count'
          operator: 'GreaterThan'
          threshold: 0
          dimensions: empty(alert.dimension) ? [] : [
            {
              name: alert.dimension
              operator: 'Include'
              values: [
                '*'
              ]
            }
          ]
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: actionGroups
    }
  }
}]
