// The connector's function app on a Flex Consumption (FC1) plan, one app per plan.
//
// Flex differs from the older plans: the runtime and the deployment package are declared in
// `functionAppConfig`, so FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION, WEBSITE_RUN_FROM_PACKAGE,
// SCM_DO_BUILD_DURING_DEPLOYMENT, WEBSITE_CONTENT* and linuxFxVersion must NOT be set (tests/infra checks).
// azd finds this site by its `azd-service-name` tag and deploys with a remote (Oryx) build.
param name string
param planName string
param location string
param tags object = {}
@description('Must match the service name in azure.yaml.')
param serviceName string = 'api'

param identityId string
param identityClientId string
param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
@description('The storage shards, each {name (its connection: SHARD1, ...), blobEndpoint, queueEndpoint, tableEndpoint}.')
param storageShards array = []
@description('The shards\' connection names, comma-separated (STORAGE_SHARDS); empty for none.')
param storageShardNames string = ''
@description('The connections new tenants are placed on (STORAGE_PLACEMENT); empty for the default.')
param storagePlacement string = ''
param deploymentContainerName string
param keyVaultUri string
param graphClientSecretName string
param applicationInsightsConnectionString string

param graphClientId string
param hostWebhookUrl string
param renewalSchedule string
param nightlyResyncSchedule string

@allowed([
  '3.11'
])
@description('The pinned requirements (azure-functions 1.x) target Python 3.11.')
param pythonVersion string = '3.11'
param maximumInstanceCount int
param httpAlwaysReadyInstances int
param zoneRedundant bool

// The app's own public URL (consent redirect URI, Graph notification URLs, console links). Built from the
// name rather than from `site.properties.defaultHostName`: the site cannot reference its own properties in
// its app settings. (Not valid if the operator enables per-region "unique default host names", which this
// template does not.)
var publicBaseUrl = 'https://${name}.azurewebsites.net'

// Warm instances for the HTTP group: Graph expects a webhook answer within 3 seconds, and a cold start
// of a Python app can take longer. Off by default (billed while idle).
var httpAlwaysReady = [
  {
    name: 'http'
    instanceCount: httpAlwaysReadyInstances
  }
]

// The app settings; shared/settings.py reads them (tests/infra checks the two agree).
var baseAppSettings = [
  // Host storage, identity-based (no connection string; shared keys are disabled). The connector's
  // own table and queue clients read the same settings (shared/settings.py, StorageSettings).
  {
    name: 'AzureWebJobsStorage__credential'
    value: 'managedidentity'
  }
  {
    name: 'AzureWebJobsStorage__clientId'
    value: identityClientId
  }
  {
    name: 'AzureWebJobsStorage__blobServiceUri'
    value: storageBlobEndpoint
  }
  {
    name: 'AzureWebJobsStorage__queueServiceUri'
    value: storageQueueEndpoint
  }
  {
    name: 'AzureWebJobsStorage__tableServiceUri'
    value: storageTableEndpoint
  }
  // Telemetry with Entra auth: local auth is disabled on the Application Insights resource.
  {
    name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
    value: applicationInsightsConnectionString
  }
  {
    name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
    value: 'ClientId=${identityClientId};Authorization=AAD'
  }
  // azure-identity (DefaultAzureCredential / ManagedIdentityCredential) picks the user-assigned identity from this.
  {
    name: 'AZURE_CLIENT_ID'
    value: identityClientId
  }
  {
    name: 'KEY_VAULT_URL'
    value: keyVaultUri
  }
  {
    name: 'GRAPH_CLIENT_ID'
    value: graphClientId
  }
  {
    name: 'GRAPH_CLIENT_SECRET_NAME'
    value: graphClientSecretName
  }
  // Key Vault reference, version-less: the platform resolves it with keyVaultReferenceIdentity and
  // picks up a new secret version within 24 hours or on restart. Until the operator has stored the
  // secret the app sees the literal `@Microsoft.KeyVault(...)` text and refuses to start, naming it.
  {
    name: 'GRAPH_CLIENT_SECRET'
    value: '@Microsoft.KeyVault(SecretUri=${keyVaultUri}secrets/${graphClientSecretName}/)'
  }
  {
    name: 'PUBLIC_BASE_URL'
    value: publicBaseUrl
  }
  {
    name: 'HOST_WEBHOOK_URL'
    value: hostWebhookUrl
  }
  {
    name: 'RENEWAL_SCHEDULE'
    value: renewalSchedule
  }
  {
    name: 'NIGHTLY_RESYNC_SCHEDULE'
    value: nightlyResyncSchedule
  }
  {
    name: 'STORAGE_SHARDS'
    value: storageShardNames
  }
  {
    name: 'STORAGE_PLACEMENT'
    value: storagePlacement
  }
]
// Each storage shard is a connection of its own, identity-based like AzureWebJobsStorage: the connector's
// clients and the host's queue triggers (`connection: SHARDn`) read the same settings.
var shardAppSettings = [
  for shard in storageShards: [
    {
      name: '${shard.name}__credential'
      value: 'managedidentity'
    }
    {
      name: '${shard.name}__clientId'
      value: identityClientId
    }
    {
      name: '${shard.name}__blobServiceUri'
      value: shard.blobEndpoint
    }
    {
      name: '${shard.name}__queueServiceUri'
      value: shard.queueEndpoint
    }
    {
      name: '${shard.name}__tableServiceUri'
      value: shard.tableEndpoint
    }
  ]
]

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    tier: 'FlexConsumption'
    name: 'FC1'
  }
  // checkov:skip=CKV_AZURE_225: Zone redundancy is the `zoneRedundant` parameter, off by default: not every Flex region has zones, it needs zone-redundant storage, and it keeps at least two always-ready instances billed.
  properties: {
    reserved: true // Linux
    zoneRedundant: zoneRedundant
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, { 'azd-service-name': serviceName })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  // checkov:skip=CKV_AZURE_222: Microsoft Graph must reach the change-notification and lifecycle webhooks, and customer admins' browsers the consent callback and console, from the internet. Each entry point checks its own secret (function key, clientState, one-time consent state, signed console link).
  // checkov:skip=CKV_AZURE_212: siteConfig.numberOfWorkers is a Dedicated-plan setting; Flex Consumption scales instances per function group by itself. Warm HTTP instances are the `httpAlwaysReadyInstances` parameter, and `zoneRedundant` keeps two per group.
  // checkov:skip=CKV_AZURE_213: Flex Consumption does not support the platform health check (healthCheckPath); /api/health exists for external probes.
  // checkov:skip=CKV_AZURE_17: Client certificates cannot be required: Graph's webhook calls and admins' browsers present none.
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientCertEnabled: false
    // Key Vault references resolve with the user-assigned identity (the default would be a system identity, which this app does not have).
    keyVaultReferenceIdentity: identityId
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      remoteDebuggingEnabled: false
      appSettings: concat(baseAppSettings, flatten(shardAppSettings))
    }
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      scaleAndConcurrency: {
        instanceMemoryMB: 2048
        maximumInstanceCount: maximumInstanceCount
        alwaysReady: httpAlwaysReadyInstances > 0 ? httpAlwaysReady : []
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
    }
  }
}

// No FTP or SCM basic-auth publishing: azd and the Azure CLI deploy with Entra tokens.
resource ftpBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmBasicAuth 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output uri string = publicBaseUrl
