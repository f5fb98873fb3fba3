// Key Vault for every secret the connector holds: the Graph app's client secret (stored by the operator),
// the host webhook signing secret and per-tenant secrets (written by the app at run time).
// Access is RBAC only (no access policies); see app/rbac.bicep.
param name string
param location string
param tags object = {}

@minValue(7)
@maxValue(90)
@description('Days a deleted vault or secret can be recovered. Purge protection forbids purging before then.')
param softDeleteRetentionInDays int = 90

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  // checkov:skip=CKV_AZURE_109: Without VNet integration (not deployed by default; docs/deployment.md, "Network isolation") the Flex app reaches the vault over its public endpoint, and a Flex app is not a "trusted Azure service" a firewall could let through. Access is Entra-only (RBAC).
  // checkov:skip=CKV_AZURE_189: Same reason as CKV_AZURE_109: the app (and the operator storing the Graph secret) need the public endpoint unless the operator adds VNet integration and a private endpoint.
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: softDeleteRetentionInDays
    enablePurgeProtection: true
    // Nothing in this template needs the vault: no VM, disk encryption or ARM template reads from it.
    enabledForDeployment: false
    enabledForDiskEncryption: false
    enabledForTemplateDeployment: false
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

output id string = vault.id
output name string = vault.name
// Ends with '/': https://<name>.vault.azure.net/
output uri string = vault.properties.vaultUri
