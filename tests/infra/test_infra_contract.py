"""What azd, Flex Consumption and the security baseline expect of infra/, checked on the parse tree."""

from __future__ import annotations

import json
import re

import pytest

from tests.infra.bicep import (
    API,
    GUID,
    INFRA,
    KEYVAULT,
    MAIN,
    PARAMETERS,
    RBAC,
    ROOT,
    STORAGE,
    azure_yaml_services,
    bicep_files,
    one_resource,
    parse,
    resolve,
    site_app_settings,
    walk_keys,
)

pytestmark = pytest.mark.infra

# The outputs azd, the hooks and docs/deployment.md rely on.
REQUIRED_OUTPUTS = {
    "AZURE_LOCATION",
    "AZURE_TENANT_ID",
    "AZURE_RESOURCE_GROUP",
    "AZURE_FUNCTION_APP_NAME",
    "SERVICE_API_NAME",
    "SERVICE_API_URI",
    "AZURE_KEY_VAULT_ENDPOINT",
    "AZURE_STORAGE_ACCOUNT_NAME",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
}

# Built-in roles infra may grant. Anything broader (Owner, Contributor, Storage Account Contributor, ...)
# would have to be added here, in review.
ALLOWED_ROLES = {
    "b7e6dc6d-f1e8-4753-8033-0f276bb0955b": "Storage Blob Data Owner",
    "974c5e8b-45b9-4653-ba55-5f855dd0fb88": "Storage Queue Data Contributor",
    "0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3": "Storage Table Data Contributor",
    "b86a8fe4-44ce-4948-aee5-eccb2c155cd7": "Key Vault Secrets Officer",
    "4633458b-17de-408a-b874-0445c86b69e6": "Key Vault Secrets User",
    "3913510d-42f4-4e42-8a64-420c390055eb": "Monitoring Metrics Publisher",
}
APP_ROLES = set(ALLOWED_ROLES) - {"4633458b-17de-408a-b874-0445c86b69e6"}

# Settings that Flex Consumption rejects or ignores: the runtime and package live in functionAppConfig.
FORBIDDEN_FLEX_SETTINGS = {
    "FUNCTIONS_WORKER_RUNTIME",
    "FUNCTIONS_EXTENSION_VERSION",
    "WEBSITE_RUN_FROM_PACKAGE",
    "SCM_DO_BUILD_DURING_DEPLOYMENT",
    "ENABLE_ORYX_BUILD",
    "WEBSITE_CONTENTAZUREFILECONNECTIONSTRING",
    "WEBSITE_CONTENTSHARE",
    "WEBSITE_NODE_DEFAULT_VERSION",
    "AzureWebJobsStorage",  # a connection string: needs shared keys, which are disabled
}
FORBIDDEN_FLEX_SITE_PROPERTIES = {"linuxFxVersion", "numberOfWorkers", "alwaysOn", "use32BitWorkerProcess"}

SECRET_NAME = re.compile(r"secret|password|passwd|pwd|token|credential|connection_?string|account_?key", re.I)
SECRET_VALUE = re.compile(
    r"AccountKey=|SharedAccessSignature|[?&]sig=|-----BEGIN|InstrumentationKey="
    r"|[A-Za-z0-9_~.\-]{3}\dQ~[A-Za-z0-9_~.\-]{30,}"  # the shape of an Entra client secret
)


def _parameter_entries() -> dict[str, object]:
    return json.loads(PARAMETERS.read_text(encoding="utf-8"))["parameters"]


def test_every_parameter_without_a_default_is_in_the_parameters_file() -> None:
    params = parse(MAIN)["parameters"]
    without_default = {name for name, param in params.items() if param["default"] is None}
    assert without_default - set(_parameter_entries()) == set()
    assert set(_parameter_entries()) - set(params) == set(), "main.parameters.json names unknown parameters"


def test_parameter_files_hold_no_secret() -> None:
    files = [*INFRA.rglob("*.parameters.json"), *INFRA.rglob("*.bicepparam")]
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not SECRET_VALUE.search(text), f"{path.name} holds a secret-looking value"
        for variable in re.findall(r"\$\{([A-Za-z0-9_]+)", text):
            assert not SECRET_NAME.search(variable), (
                f"{path.name} feeds ${{{variable}}} (a secret?) to the template"
            )
    for name, param in parse(MAIN)["parameters"].items():
        decorators = {decorator["type"] for decorator in param["decorators"]}
        assert not SECRET_NAME.search(name), (
            f"main.bicep param {name}: secrets go to Key Vault, not parameters"
        )
        assert "secure" not in decorators, f"main.bicep param {name} is @secure(): secrets go to Key Vault"


def test_modules_are_local_files_that_exist() -> None:
    for path in bicep_files():
        for name, module in parse(path).get("modules", {}).items():
            target = module["detail"]["path"]
            assert module["type"] == "local", (
                f"{path.name} module {name}: registry modules can't be scanned offline"
            )
            assert (path.parent / target).is_file(), f"{path.name} module {name}: {target} does not exist"


def test_site_carries_the_azd_service_name_of_azure_yaml() -> None:
    services = azure_yaml_services()
    assert len(services) == 1, "azure.yaml: expected one service, the function app"
    (service_name, service), *_ = services.items()
    assert service == {"project": ".", "language": "python", "host": "function"}
    tags = one_resource(API, "Microsoft.Web/sites")["tags"]["function"]["parameters"]["arg_2"]
    assert resolve(API, tags["'azd-service-name'"]) == service_name
    assert "serviceName" not in parse(MAIN)["modules"]["api"]["config"]["params"], "main.bicep overrides it"


def test_main_has_the_outputs_azd_and_the_docs_use() -> None:
    assert set(parse(MAIN)["outputs"]) >= REQUIRED_OUTPUTS


def test_roles_are_on_the_allow_list() -> None:
    for path in bicep_files():
        for guid in GUID.findall(path.read_text(encoding="utf-8")):
            assert guid.lower() in ALLOWED_ROLES, f"{path.name}: {guid} is not an allowed role definition"
    granted = {guid.lower() for guid in GUID.findall(RBAC.read_text(encoding="utf-8"))}
    assert granted >= APP_ROLES, f"rbac.bicep misses {[ALLOWED_ROLES[g] for g in APP_ROLES - granted]}"


def test_flex_app_sets_no_legacy_setting() -> None:
    assert FORBIDDEN_FLEX_SETTINGS & set(site_app_settings()) == set()
    site = one_resource(API, "Microsoft.Web/sites")
    assert FORBIDDEN_FLEX_SITE_PROPERTIES & walk_keys(site) == set()


def test_flex_app_runs_python_311_with_its_identity() -> None:
    plan = one_resource(API, "Microsoft.Web/serverfarms")
    site = one_resource(API, "Microsoft.Web/sites")
    config = site["properties"]["functionAppConfig"]
    assert plan["sku"] == {"tier": "FlexConsumption", "name": "FC1"}
    assert resolve(API, config["runtime"]["version"]) == "3.11"
    assert config["runtime"]["name"] == "python"
    assert config["scaleAndConcurrency"]["instanceMemoryMB"] == 2048
    assert config["deployment"]["storage"]["authentication"]["type"] == "UserAssignedIdentity"
    assert site["identity"]["type"] == "UserAssigned"
    assert site["properties"]["httpsOnly"] is True
    assert site["properties"]["keyVaultReferenceIdentity"] == "identityId"


def test_key_vault_uses_rbac_soft_delete_and_purge_protection() -> None:
    properties = one_resource(KEYVAULT, "Microsoft.KeyVault/vaults")["properties"]
    assert properties["enableRbacAuthorization"] is True
    assert properties["enableSoftDelete"] is True
    assert properties["enablePurgeProtection"] is True
    assert "accessPolicies" not in properties


def test_storage_has_no_shared_keys_and_https_only() -> None:
    properties = one_resource(STORAGE, "Microsoft.Storage/storageAccounts")["properties"]
    assert properties["allowSharedKeyAccess"] is False
    assert properties["minimumTlsVersion"] == "TLS1_2"
    assert properties["supportsHttpsTrafficOnly"] is True
    assert properties["allowBlobPublicAccess"] is False


def test_queue_and_table_names_are_valid_and_queues_get_poison_twins() -> None:
    variables = parse(MAIN)["variables"]
    queues, tables = variables["connectorQueues"]["value"], variables["connectorTables"]["value"]
    for queue in queues:  # Azure: 3-63 lowercase letters, digits and single hyphens; the host adds "-poison"
        assert re.fullmatch(r"[a-z0-9](?:-?[a-z0-9])+", queue) and len(f"{queue}-poison") <= 63, queue
    for table in tables:  # Azure: 3-63 letters and digits, starting with a letter
        assert re.fullmatch(r"[A-Za-z][A-Za-z0-9]{2,62}", table), table
    poison = [
        resource
        for resource in parse(STORAGE)["resources"].values()
        if resource["type"] == "Microsoft.Storage/storageAccounts/queueServices/queues"
    ]
    assert any("-poison" in json.dumps(resource) for resource in poison), (
        "no <queue>-poison loop in storage.bicep"
    )


def test_infra_creates_every_table_the_adapters_use() -> None:
    from shared.adapters.tables import (
        busy,
        change_feed,
        consent_states,
        dead_letters,
        item_statuses,
        leases,
        mail,
        mailbox_claims,
        messages,
        subscription_index,
        tenants,
        users,
    )

    used = {
        tenants.TENANTS,
        users.USERS,
        consent_states.CONSENT_STATES,
        change_feed.CHANGES,
        item_statuses.OUTLOOK_ITEMS,
        leases.LEASES,
        mailbox_claims.MAILBOX_CLAIMS,
        subscription_index.SUBSCRIPTIONS,
        dead_letters.DELIVERIES,
        busy.BUSY,
        mail.MAIL,
        messages.MESSAGES,
    }
    created = set(parse(MAIN)["variables"]["connectorTables"]["value"])
    assert used <= created, f"tables the app uses but infra does not create: {sorted(used - created)}"


def test_infra_creates_the_blob_containers_the_adapters_use_privately() -> None:
    from shared.adapters.blobs import mail_content

    variables = parse(MAIN)["variables"]
    containers = variables["connectorContainers"]["value"]
    assert mail_content.CONTAINER in containers
    for container in containers:  # Azure: 3-63 lowercase letters, digits and single hyphens
        assert re.fullmatch(r"[a-z0-9](?:-?[a-z0-9]){2,62}", container), container
    created = [
        resource
        for resource in parse(STORAGE)["resources"].values()
        if resource["type"] == "Microsoft.Storage/storageAccounts/blobServices/containers"
        and "containerNames" in json.dumps(resource)
    ]
    assert len(created) == 1, "no loop over containerNames in storage.bicep"
    loop = created[0]["config"]
    assert loop["loop_type"]["detail"]["array_name"] == "containerNames"
    assert loop["config"]["properties"]["publicAccess"] == "None"


def test_checkov_skips_sit_inside_a_resource_with_a_reason() -> None:
    for path in bicep_files():
        depth = 0
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if match := re.search(r"checkov:skip=(CKV2?_AZURE_\d+)(.*)", line):
                where = f"{path.relative_to(ROOT)}:{number}"
                assert depth >= 1, f"{where}: a skip must sit inside the resource it suppresses"
                reason = match.group(2).lstrip(":").strip()
                assert len(reason) >= 40, f"{where}: {match.group(1)} needs a real reason"
            depth += line.count("{") - line.count("}")


def test_the_postprovision_hooks_create_exactly_the_connectors_signing_keys() -> None:
    from shared.service.keys import SIGNING_KEYS

    for hook in ("postprovision.sh", "postprovision.ps1"):
        text = (INFRA / "hooks" / hook).read_text()
        listed = re.search(r"(?:for name in |foreach \(\$name in @\()([^\n]*)", text)
        assert listed is not None, hook
        assert set(re.findall(r"[a-z]+(?:-[a-z]+)+", listed.group(1))) == set(SIGNING_KEYS), hook
        assert "--file" in text and "--value" not in text, hook  # the value is on no command line


def test_storage_shards_are_the_home_account_hardened_alike_with_the_apps_roles() -> None:
    """`storageShardCount` accounts from the same module with the same queues, tables and containers (so the
    same hardening checkov sees), and the app's storage roles on each, as on the home account."""
    modules = parse(MAIN)["modules"]
    home, shards = modules["storage"], modules["storageShards"]
    assert shards["detail"]["path"] == home["detail"]["path"]
    loop = shards["config"]["loop_type"]["detail"]["array_name"]["function"]
    assert (loop["type"], loop["parameters"]["count"]) == ("range", "storageShardCount")
    shard_params = shards["config"]["config"]["params"]
    home_params = home["config"]["params"]
    for shared in ("queueNames", "tableNames", "containerNames", "skuName", "location"):
        assert shard_params[shared] == home_params[shared], shared
    assert "deploymentContainerName" not in shard_params  # the package lives in the home account only
    assert parse(MAIN)["parameters"]["storageShardCount"]["default"] == 0
    assignment = parse(RBAC)["resources"]["appShardStorage"]
    assert assignment["type"] == "Microsoft.Authorization/roleAssignments"
    text = RBAC.read_text(encoding="utf-8")
    assert "appStorageRoles[pair % length(appStorageRoles)]" in text
    assert "scope: shards[pair / length(appStorageRoles)]" in text
