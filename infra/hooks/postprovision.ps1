# azd postprovision hook (Windows): creates the connector's signing keys in Key Vault when they are
# absent, then prints the steps azd cannot do for you. azd exports the environment's values
# (infra/main.bicep outputs) as environment variables. The app creates a missing key on first use too,
# so a failure here (a role assignment still propagating) only leaves that to the app.
foreach ($name in @('notification-signing-key', 'console-link-key')) {
    az keyvault secret show --vault-name $env:AZURE_KEY_VAULT_NAME --name $name --query id -o tsv *> $null
    if ($LASTEXITCODE -eq 0) {
        Write-Host "Key Vault $($env:AZURE_KEY_VAULT_NAME) holds $name"
        continue
    }
    # 32 random bytes, base64url, as the app makes them; through a file, so the value is on no command line.
    $bytes = [System.Security.Cryptography.RandomNumberGenerator]::GetBytes(32)
    $value = [Convert]::ToBase64String($bytes).Replace('+', '-').Replace('/', '_')
    $file = New-TemporaryFile
    try {
        [System.IO.File]::WriteAllText($file.FullName, $value)
        az keyvault secret set --vault-name $env:AZURE_KEY_VAULT_NAME --name $name --file $file.FullName `
            --encoding utf-8 --query id -o tsv *> $null
        if ($LASTEXITCODE -eq 0) {
            Write-Host "Key Vault $($env:AZURE_KEY_VAULT_NAME): created $name"
        } else {
            Write-Host "Could not create $name in Key Vault $($env:AZURE_KEY_VAULT_NAME) (the app creates it on first use)"
        }
    } finally {
        Remove-Item -Force $file.FullName
    }
}
$clientId = if ($env:GRAPH_CLIENT_ID) { $env:GRAPH_CLIENT_ID } else { '<GRAPH_CLIENT_ID>' }
Write-Host @"

Provisioned. What is left to do by hand (docs/deployment.md):

  * The Entra app $clientId needs this Web redirect URI (section 3):
      $($env:CONSENT_REDIRECT_URI)

  * Key Vault $($env:AZURE_KEY_VAULT_NAME) needs the Graph app secret as '$($env:GRAPH_CLIENT_SECRET_NAME)' (section 5);
    until it is there, every function fails and names the unresolved setting. Then restart once:
      az functionapp restart --resource-group $($env:AZURE_RESOURCE_GROUP) --name $($env:AZURE_FUNCTION_APP_NAME)

"@
