#!/bin/sh
# azd postprovision hook: creates the connector's signing keys in Key Vault when they are absent, then
# prints the steps azd cannot do for you. azd exports the environment's values (infra/main.bicep
# outputs) as variables. The app creates a missing key on first use too (and two workers racing to do so
# each sign with their own version, which the others verify by the version named), so a failure here
# (a role assignment still propagating) only leaves that to the app.
for name in notification-signing-key console-link-key; do
  if az keyvault secret show --vault-name "$AZURE_KEY_VAULT_NAME" --name "$name" --query id -o tsv >/dev/null 2>&1; then
    echo "Key Vault ${AZURE_KEY_VAULT_NAME} holds ${name}"
    continue
  fi
  file=$(umask 077 && mktemp) || exit 1
  # 32 random bytes, base64url, as the app makes them; through a file, so the value is on no command line.
  openssl rand -base64 32 | tr '+/' '-_' | tr -d '\n' >"$file"
  if az keyvault secret set --vault-name "$AZURE_KEY_VAULT_NAME" --name "$name" --file "$file" \
    --encoding utf-8 --query id -o tsv >/dev/null; then
    echo "Key Vault ${AZURE_KEY_VAULT_NAME}: created ${name}"
  else
    echo "Could not create ${name} in Key Vault ${AZURE_KEY_VAULT_NAME} (the app creates it on first use)"
  fi
  rm -f "$file"
done
cat <<MSG

Provisioned. What is left to do by hand (docs/deployment.md):

  * The Entra app ${GRAPH_CLIENT_ID:-<GRAPH_CLIENT_ID>} needs this Web redirect URI (section 3):
      ${CONSENT_REDIRECT_URI}

  * Key Vault ${AZURE_KEY_VAULT_NAME} needs the Graph app secret as '${GRAPH_CLIENT_SECRET_NAME}' (section 5);
    until it is there, every function fails and names the unresolved setting. Then restart once:
      az functionapp restart --resource-group ${AZURE_RESOURCE_GROUP} --name ${AZURE_FUNCTION_APP_NAME}

MSG
