// Least-privilege data-plane roles. No control-plane role (Owner, Contributor, ...) is granted.
//
// The app's identity:
//   storage account (and each storage shard): Storage Blob Data Owner (host storage: timer locks and schedule status,
//                         and the Flex deployment container), Storage Queue Data Contributor,
//                         Storage Table Data Contributor;
//   Key Vault:            Key Vault Secrets Officer (the app writes secrets: the host webhook signing
//                         secret and per-tenant customer app secrets; Officer also reads, which the
//                         Key Vault reference needs);
//   Application Insights: Monitoring Metrics Publisher (telemetry with Entra auth; local auth is off).
// The deploying principal (optional): Key Vault Secrets Officer (to store the Graph secret) and the
// table and queue data roles (to inspect state and poison queues while debugging).

param storageAccountName string
@description('The storage shards: the app gets the same storage roles on each as on the home account.')
param shardAccountNames array = []
param keyVaultName string
param applicationInsightsName string
param identityPrincipalId string
@description('Object id of the deploying user or CI principal; empty grants nothing.')
param principalId string = ''
param principalType string = 'User'

// Built-in role definition ids (the same in every tenant). tests/infra checks this list.
var roles = {
  storageBlobDataOwner: 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
  storageQueueDataContributor: '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
  storageTableDataContributor: '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
  keyVaultSecretsOfficer: 'b86a8fe4-44ce-4948-aee5-eccb2c155cd7'
  monitoringMetricsPublisher: '3913510d-42f4-4e42-8a64-420c390055eb'
}

var appStorageRoles = [
  roles.storageBlobDataOwner
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]
var operatorStorageRoles = [
  roles.storageQueueDataContributor
  roles.storageTableDataContributor
]

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

resource applicationInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: applicationInsightsName
}

resource appStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in appStorageRoles: {
    name: guid(storage.id, identityPrincipalId, roleId)
    scope: storage
    properties: {
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource shards 'Microsoft.Storage/storageAccounts@2023-05-01' existing = [
  for shardName in shardAccountNames: {
    name: shardName
  }
]

// Every (shard, role) pair, numbered shard by shard: the app's storage roles on each shard.
resource appShardStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for pair in range(0, length(shardAccountNames) * length(appStorageRoles)): {
    name: guid(shards[pair / length(appStorageRoles)].id, identityPrincipalId, appStorageRoles[pair % length(appStorageRoles)])
    scope: shards[pair / length(appStorageRoles)]
    properties: {
      principalId: identityPrincipalId
      principalType: 'ServicePrincipal'
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', appStorageRoles[pair % length(appStorageRoles)])
    }
  }
]

resource appSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, identityPrincipalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}

resource appTelemetry 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(applicationInsights.id, identityPrincipalId, roles.monitoringMetricsPublisher)
  scope: applicationInsights
  properties: {
    principalId: identityPrincipalId
    principalType: 'ServicePrincipal'
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.monitoringMetricsPublisher)
  }
}

resource operatorStorage 'Microsoft.Authorization/roleAssignments@2022-04-01' = [
  for roleId in (empty(principalId) ? [] : operatorStorageRoles): {
    name: guid(storage.id, principalId, roleId)
    scope: storage
    properties: {
      principalId: principalId
      principalType: principalType
      roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roleId)
    }
  }
]

resource operatorSecrets 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(principalId)) {
  name: guid(vault.id, principalId, roles.keyVaultSecretsOfficer)
  scope: vault
  properties: {
    principalId: principalId
    principalType: principalType
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', roles.keyVaultSecretsOfficer)
  }
}
