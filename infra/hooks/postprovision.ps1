# azd postprovision hook (Windows): prints the steps azd cannot do for you. It changes nothing.
# azd exports the environment's values (infra/main.bicep outputs) as environment variables.
$clientId = if ($env:GRAPH_CLIENT_ID) { $env:GRAPH_CLIENT_ID } else { '<GRAPH_CLIENT_ID>' }
Write-Host @"

Provisioned. What is left to do by hand (docs/deployment.md):

  * The Entra app $clientId needs this Web redirect URI (section 3):
      $($env:CONSENT_REDIRECT_URI)

  * Key Vault $($env:AZURE_KEY_VAULT_NAME) needs the Graph app secret as '$($env:GRAPH_CLIENT_SECRET_NAME)' (section 5);
    until it is there, every function fails and names the unresolved setting. Then restart once:
      az functionapp restart --resource-group $($env:AZURE_RESOURCE_GROUP) --name $($env:AZURE_FUNCTION_APP_NAME)

"@
