"""The deployment contract with the code: the app settings and queues infra/ sets up are the ones it uses."""

from __future__ import annotations

import json
import re

import pytest

from shared import settings
from shared.service import jobs
from tests.infra.bicep import API, MAIN, PARAMETERS, ROOT, parse, shard_app_settings, site_app_settings

pytestmark = pytest.mark.infra

# Settings the platform reads, not the connector's code.
PLATFORM_SETTINGS = {
    "AzureWebJobsStorage__credential",
    "AzureWebJobsStorage__clientId",
    "AzureWebJobsStorage__blobServiceUri",
    "AzureWebJobsStorage__queueServiceUri",
    "AzureWebJobsStorage__tableServiceUri",
    "AzureWebJobsStorage__accountName",
    "APPLICATIONINSIGHTS_CONNECTION_STRING",
    "APPLICATIONINSIGHTS_AUTHENTICATION_STRING",
}
KEY_VAULT_REFERENCE = re.compile(r"^@Microsoft\.KeyVault\(SecretUri=\$\{keyVaultUri\}secrets/[^/)]+/\)$")


def test_infra_sets_every_required_setting() -> None:
    assert set(settings.REQUIRED) - set(site_app_settings()) == set()


def test_infra_sets_no_setting_the_code_does_not_read() -> None:
    known = set(settings.REQUIRED) | set(settings.OPTIONAL) | PLATFORM_SETTINGS
    assert set(site_app_settings()) - known == set(), "a typo, or a setting shared/settings.py should list"


def test_infra_never_sets_a_setting_of_the_local_host() -> None:
    # The shared test clock moves the connector's time: production must never have it (the settings object
    # refuses it outside the local host too).
    assert set(settings.LOCAL_ONLY) & set(site_app_settings()) == set()
    assert set(settings.LOCAL_ONLY) & (set(settings.REQUIRED) | set(settings.OPTIONAL)) == set()


def test_storage_is_an_identity_based_connection_with_the_app_identity() -> None:
    app_settings = site_app_settings()
    prefix = f"{settings.STORAGE_CONNECTION}__"
    assert settings.STORAGE_CONNECTION not in app_settings, "a connection string needs shared keys"
    assert app_settings[f"{prefix}credential"] == "managedidentity"
    assert app_settings[f"{prefix}clientId"] == "identityClientId"
    assert app_settings["AZURE_CLIENT_ID"] == "identityClientId"
    # The shape StorageSettings.from_environ accepts: an account name, or both service URIs.
    assert f"{prefix}accountName" in app_settings or {
        f"{prefix}tableServiceUri",
        f"{prefix}queueServiceUri",
    } <= set(app_settings)
    assert f"{prefix}blobServiceUri" in app_settings or f"{prefix}accountName" in app_settings  # host storage


def test_graph_secret_is_a_key_vault_reference_not_a_value() -> None:
    app_settings = site_app_settings()
    for name, value in app_settings.items():
        if isinstance(value, str) and value.startswith(settings.KEY_VAULT_REFERENCE_PREFIX):
            assert KEY_VAULT_REFERENCE.match(value), f"{name}: {value}"
    assert app_settings["GRAPH_CLIENT_SECRET"].startswith(settings.KEY_VAULT_REFERENCE_PREFIX)
    assert app_settings["GRAPH_CLIENT_SECRET_NAME"] == "graphClientSecretName"
    assert parse(MAIN)["variables"]["graphClientSecretName"]["value"] == settings.DEFAULT_GRAPH_SECRET_NAME


def test_public_base_url_is_the_app_own_https_host() -> None:
    # Built from the site name: the site cannot read its own defaultHostName in its app settings.
    assert site_app_settings()["PUBLIC_BASE_URL"] == "publicBaseUrl"
    assert parse(API)["variables"]["publicBaseUrl"]["value"] == "https://${name}.azurewebsites.net"
    assert parse(MAIN)["outputs"]["CONSENT_REDIRECT_URI"]["value"].endswith("/api/consent/callback")


@pytest.mark.parametrize(
    ("setting", "param"),
    [("RENEWAL_SCHEDULE", "renewalSchedule"), ("NIGHTLY_RESYNC_SCHEDULE", "nightlyResyncSchedule")],
)
def test_schedule_defaults_agree_everywhere(setting: str, param: str) -> None:
    bicep_default = parse(MAIN)["parameters"][param]["default"]
    azd_value = json.loads(PARAMETERS.read_text(encoding="utf-8"))["parameters"][param]["value"]
    local = json.loads((ROOT / "local.settings.sample.json").read_text(encoding="utf-8"))["Values"][setting]
    assert azd_value == f"${{{setting}={bicep_default}}}"
    assert local == bicep_default
    assert len(bicep_default.split()) == 6, "NCRONTAB with seconds: six fields"


def test_infra_creates_every_queue_the_code_uses() -> None:
    created = set(parse(MAIN)["variables"]["connectorQueues"]["value"])
    assert set(jobs.QUEUES) - created == set(), "add these to connectorQueues in infra/main.bicep"


def test_each_storage_shard_is_an_identity_based_connection_named_in_storage_shards() -> None:
    """A shard's connection has the home connection's shape, with the app identity; the connector reads it
    through `StorageSettings.from_environ(env, name)` and the host's queue triggers by the same name."""
    shard = shard_app_settings()
    assert shard == {
        "${shard.name}__credential": "managedidentity",
        "${shard.name}__clientId": "identityClientId",
        "${shard.name}__blobServiceUri": "shard.blobEndpoint",
        "${shard.name}__queueServiceUri": "shard.queueEndpoint",
        "${shard.name}__tableServiceUri": "shard.tableEndpoint",
    }
    assert {"STORAGE_SHARDS", "STORAGE_PLACEMENT"} <= set(site_app_settings())
    env = {
        name.replace("${shard.name}", "SHARD1"): f"https://x.example/{value}" for name, value in shard.items()
    }
    parsed = settings.StorageShards.from_environ({**env, "STORAGE_SHARDS": "SHARD1"})
    assert parsed.accounts[0][1].queue_endpoint == "https://x.example/shard.queueEndpoint"
