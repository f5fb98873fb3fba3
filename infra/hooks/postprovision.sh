#!/bin/sh
# azd postprovision hook: prints the steps azd cannot do for you. It changes nothing.
# azd exports the environment's values (infra/main.bicep outputs) as variables.
cat <<MSG

Provisioned. What is left to do by hand (docs/deployment.md):

  * The Entra app ${GRAPH_CLIENT_ID:-<GRAPH_CLIENT_ID>} needs this Web redirect URI (section 3):
      ${CONSENT_REDIRECT_URI}

  * Key Vault ${AZURE_KEY_VAULT_NAME} needs the Graph app secret as '${GRAPH_CLIENT_SECRET_NAME}' (section 5);
    until it is there, every function fails and names the unresolved setting. Then restart once:
      az functionapp restart --resource-group ${AZURE_RESOURCE_GROUP} --name ${AZURE_FUNCTION_APP_NAME}

MSG
