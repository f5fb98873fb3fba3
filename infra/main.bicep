// The Microsoft 365 calendar connector, as `azd up` deploys it.
//
// One resource group holding: a user-assigned managed identity (the app's only identity), a storage
// account (Functions host storage, the deployment package, the connector's tables and queues; no shared
// keys), a Key Vault (RBAC, soft delete, purge protection), Log Analytics + Application Insights (Entra
// auth only), and a Flex Consumption function app. Role assignments give the identity exactly the data
// roles it needs. See docs/deployment.md.
targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('azd environment name; seeds every resource name and the resource group name.')
param environmentName string

@minLength(1)
@description('Region for every resource. It must offer Flex Consumption: `az functionapp list-flexconsumption-locations`.')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@minLength(36)
@maxLength(36)
@description('Application (client) id of the multi-tenant Entra app the connector uses for Microsoft Graph. Its secret goes to Key Vault, never here.')
param graphClientId string

@description('The host app\'s webhook that receives changes from Outlook (https). Empty: changes are only offered on the pull feed.')
param hostWebhookUrl string = ''

@description('NCRONTAB (UTC, six fields) of the Graph subscription renewal timer.')
param renewalSchedule string = '0 0 */6 * * *'

@description('NCRONTAB (UTC, six fields) of the nightly resync fan-out.')
param nightlyResyncSchedule string = '0 0 2 * * *'

@maxLength(60)
@description('Function app name (the host name is <name>.azurewebsites.net). Empty: func-<token>, derived from the subscription, environment and region.')
param functionAppName string = ''

@minValue(1)
@maxValue(1000)
@description('Flex Consumption scale-out ceiling. It also caps how hard the connector can hit Graph in parallel.')
param maximumInstanceCount int = 40

@minValue(0)
@maxValue(10)
@description('Always-ready instances of the HTTP group. 1 removes cold starts from the Graph webhook (3 s budget); each one is billed while idle.')
param httpAlwaysReadyInstances int = 0

@description('Spread the app over availability zones. Needs a region with zones and zone-redundant storage (Standard_ZRS or Standard_GZRS).')
param zoneRedundant bool = false

@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
@description('Storage replication. The tables hold the connector\'s state (tenants, links between host and Outlook items), so the default is geo-redundant.')
param storageSkuName string = 'Standard_GRS'

@description('Storage accounts beyond the home one, each holding the tables, queues and mail content of the tenants placed on it (DESIGN.md, "Sharding across storage accounts"). 0: one account. Raise it to add shards; never lower it while a shard holds tenants.')
@minValue(0)
@maxValue(20)
param storageShardCount int = 0

@description('The storage connections new tenants are placed on, comma-separated (STORAGE_PLACEMENT: AzureWebJobsStorage, SHARD1, ...). Empty: every shard (or the home account when there is none). Narrow it to close a full shard to new tenants.')
param storagePlacement string = ''

@description('Object id of the person (or CI principal) running azd: gets data roles for debugging and to store the Graph secret. azd fills it in.')
param principalId string = ''

@allowed([
  'User'
  'ServicePrincipal'
  'Group'
])
param principalType string = 'User'

@description('Resource id of an action group the connector\'s alerts notify (dead letters, poison messages, failing subscription renewals, revoked consent, a slow Graph webhook). Empty: the alerts fire in the portal only.')
param alertActionGroupId string = ''

// The connector's queues and tables: the one list. The storage module creates each queue with its
// `-poison` twin, so the app's least-privilege data roles never need to create anything (it still
// creates what is missing, e.g. a table added by a later version).
var connectorQueues = [
  'sync-jobs'
  'tenant-jobs'
  'host-deliveries'
  'outlook-writes'
]
var connectorTables = [
  'tenants'
  'users'
  'outlookitems'
  'appointments'
  'changes'
  'consentstates'
  'leases'
  'mailboxclaims'
  'deliveries'
  'subscriptions'
  'busy'
  'mail'
  'tasks'
  'messages'
]
// Blob containers the app keeps data in: the content of mail not sent yet (deleted once sent or failed).
var connectorContainers = [
  'outgoing-mail'
]

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = { 'azd-env-name': environmentName }
var appName = !empty(functionAppName) ? functionAppName : '${abbrs.webSitesFunctions}${resourceToken}'
// Flex reads and writes its package here, through the managed identity.
var deploymentContainerName = 'app-package-${take(resourceToken, 10)}'
// The name of the Key Vault secret holding the Graph app's client secret. The operator stores it.
var graphClientSecretName = 'graph-client-secret'

resource rg 'Microsoft.Resources/resourceGroups@2021-04-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity './core/security/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './core/storage/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    skuName: storageSkuName
    deploymentContainerName: deploymentContainerName
    queueNames: connectorQueues
    tableNames: connectorTables
    containerNames: connectorContainers
  }
}

var storageShardNames = [for index in range(1, storageShardCount): 'SHARD${index}']

// The storage shards: the same hardening, queues, tables and containers as the home account. Their
// connections are named SHARD1, SHARD2, ... (app settings `SHARDn__...`, `STORAGE_SHARDS`).
module storageShards './core/storage/storage.bicep' = [
  for index in range(1, storageShardCount): {
    name: 'storage-shard-${index}'
    scope: rg
    params: {
      name: '${abbrs.storageStorageAccounts}${take(resourceToken, 12)}s${index}'
      location: location
      tags: tags
      skuName: storageSkuName
      queueNames: connectorQueues
      tableNames: connectorTables
      containerNames: connectorContainers
    }
  }
]

module keyVault './core/security/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    // Vault names are at most 24 characters: kv- + the 13-character token.
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
  }
}

module monitoring './core/monitor/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    logAnalyticsName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    applicationInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    location: location
    tags: tags
  }
}

module alerts './core/monitor/alerts.bicep' = {
  name: 'alerts'
  scope: rg
  params: {
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    location: location
    tags: tags
    actionGroupId: alertActionGroupId
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    shardAccountNames: [for index in range(0, storageShardCount): storageShards[index].outputs.name]
    keyVaultName: keyVault.outputs.name
    applicationInsightsName: monitoring.outputs.applicationInsightsName
    identityPrincipalId: identity.outputs.principalId
    principalId: principalId
    principalType: principalType
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: appName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    storageShards: [
      for index in range(0, storageShardCount): {
        name: storageShardNames[index]
        blobEndpoint: storageShards[index].outputs.blobEndpoint
        queueEndpoint: storageShards[index].outputs.queueEndpoint
        tableEndpoint: storageShards[index].outputs.tableEndpoint
      }
    ]
    storageShardNames: join(storageShardNames, ',')
    storagePlacement: storagePlacement
    deploymentContainerName: deploymentContainerName
    keyVaultUri: keyVault.outputs.uri
    graphClientSecretName: graphClientSecretName
    applicationInsightsConnectionString: monitoring.outputs.applicationInsightsConnectionString
    graphClientId: graphClientId
    hostWebhookUrl: hostWebhookUrl
    renewalSchedule: renewalSchedule
    nightlyResyncSchedule: nightlyResyncSchedule
    maximumInstanceCount: maximumInstanceCount
    httpAlwaysReadyInstances: httpAlwaysReadyInstances
    zoneRedundant: zoneRedundant
  }
  // Start the app once its identity holds its roles, so the first start can read storage and resolve the
  // Key Vault reference (role assignments still take a few minutes to propagate; see the docs).
  dependsOn: [
    rbac
  ]
}

// azd writes these to .azure/<env>/.env; docs/deployment.md and the hooks use them.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output SERVICE_API_URI string = api.outputs.uri
output CONSENT_REDIRECT_URI string = '${api.outputs.uri}/api/consent/callback'
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
output AZURE_KEY_VAULT_ENDPOINT string = keyVault.outputs.uri
output GRAPH_CLIENT_SECRET_NAME string = graphClientSecretName
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_MANAGED_IDENTITY_CLIENT_ID string = identity.outputs.clientId
// Not a secret: with local auth disabled, ingestion also needs an Entra token.
output APPLICATIONINSIGHTS_CONNECTION_STRING string = monitoring.outputs.applicationInsightsConnectionString
