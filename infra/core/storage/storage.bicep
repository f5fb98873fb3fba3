// One storage account for everything the app stores:
// - Functions host storage (timer schedule status and singleton locks in blobs, queue trigger state),
// - the Flex deployment package container,
// - the connector's queues (each with its `-poison` twin) and tables.
// A storage shard (main.bicep, `storageShardCount`) is the same account without the deployment container:
// it holds the tables, queues and mail content of the tenants placed on it, and the host's queue listeners.
// Shared keys are disabled: every client (host, app, operator) authenticates with Entra ID.
param name string
param location string
param tags object = {}
@allowed([
  'Standard_LRS'
  'Standard_ZRS'
  'Standard_GRS'
  'Standard_RAGRS'
  'Standard_GZRS'
  'Standard_RAGZRS'
])
param skuName string = 'Standard_GRS'
@description('The Flex deployment package container; empty for a storage shard (it holds no package).')
param deploymentContainerName string = ''
@description('Queues to create; each also gets <name>-poison, where the Functions host moves failed messages.')
param queueNames array
param tableNames array
@description('Blob containers the app keeps data in (private).')
param containerNames array = []

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: name
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: skuName
  }
  // checkov:skip=CKV_AZURE_35: A Flex app without VNet integration reaches storage over the public endpoint and is not a trusted service a firewall could let through; network isolation (VNet integration + private endpoints) is the operator's choice (docs/deployment.md, "Network isolation"). Shared keys are off, so access needs an Entra identity holding a data role.
  // checkov:skip=CKV_AZURE_59: Same reason as CKV_AZURE_35: public network access must stay enabled unless the operator adds VNet integration and private endpoints. Anonymous blob access is disabled (allowBlobPublicAccess: false).
  properties: {
    accessTier: 'Hot'
    allowBlobPublicAccess: false
    allowSharedKeyAccess: false
    allowCrossTenantReplication: false
    defaultToOAuthAuthentication: true
    isLocalUserEnabled: false
    isSftpEnabled: false
    minimumTlsVersion: 'TLS1_2'
    supportsHttpsTrafficOnly: true
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

resource blobService 'Microsoft.Storage/storageAccounts/blobServices@2023-05-01' = {
  parent: storage
  name: 'default'
  properties: {
    deleteRetentionPolicy: {
      enabled: true
      days: 7
    }
    containerDeleteRetentionPolicy: {
      enabled: true
      days: 7
    }
  }
}

resource deploymentContainer 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = if (!empty(deploymentContainerName)) {
  parent: blobService
  name: deploymentContainerName
  properties: {
    publicAccess: 'None'
  }
}

resource connectorContainers 'Microsoft.Storage/storageAccounts/blobServices/containers@2023-05-01' = [
  for containerName in containerNames: {
    parent: blobService
    name: containerName
    properties: {
      publicAccess: 'None'
    }
  }
]

resource queueService 'Microsoft.Storage/storageAccounts/queueServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource queues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: queueName
  }
]

resource poisonQueues 'Microsoft.Storage/storageAccounts/queueServices/queues@2023-05-01' = [
  for queueName in queueNames: {
    parent: queueService
    name: '${queueName}-poison'
  }
]

resource tableService 'Microsoft.Storage/storageAccounts/tableServices@2023-05-01' = {
  parent: storage
  name: 'default'
}

resource tables 'Microsoft.Storage/storageAccounts/tableServices/tables@2023-05-01' = [
  for tableName in tableNames: {
    parent: tableService
    name: tableName
  }
]

output id string = storage.id
output name string = storage.name
// Each ends with '/'.
output blobEndpoint string = storage.properties.primaryEndpoints.blob
output queueEndpoint string = storage.properties.primaryEndpoints.queue
output tableEndpoint string = storage.properties.primaryEndpoints.table
