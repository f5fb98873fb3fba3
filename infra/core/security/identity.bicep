// The app's one identity: host storage, its own tables and queues, Key Vault (including Key Vault
// references) and Application Insights ingestion all go through it. User-assigned, so its roles can be
// granted before the function app exists and survive the app being recreated.
param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output name string = identity.name
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
