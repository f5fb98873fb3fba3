"""The alerts in infra/core/monitor/alerts.bicep query what the code sends: every metric they name is one
of the connector's (shared/telemetry/names.py), every dimension they read one its metrics carry, and each
alert notifies the action group parameter."""

from __future__ import annotations

import re

import pytest

from shared.telemetry import names
from tests.infra.bicep import INFRA, MAIN, ROOT, parse

pytestmark = pytest.mark.infra

ALERTS = INFRA / "core" / "monitor" / "alerts.bicep"
METRIC_NAME = re.compile(r'\bname == "([^"]+)"')
DIMENSION = re.compile(r"customDimensions\.(\w+)")
QUERY = re.compile(r"query: '''(.*?)'''", re.DOTALL)


def _queries() -> list[str]:
    return QUERY.findall(ALERTS.read_text(encoding="utf-8"))


def test_there_is_an_alert_for_each_condition_the_operator_watches() -> None:
    queried = {m for q in _queries() for m in METRIC_NAME.findall(q)}
    assert queried == {
        names.DEAD_LETTERS,
        names.JOBS_POISONED,
        names.SUBSCRIPTION_RENEWALS,
        names.CHANGES_PUBLISHED,  # tenant.consent_revoked
        names.WEBHOOK_DURATION,
    }


@pytest.mark.parametrize("query", _queries(), ids=lambda q: METRIC_NAME.findall(q)[0])
def test_each_query_names_metrics_and_dimensions_the_code_emits(query: str) -> None:
    assert set(METRIC_NAME.findall(query)) <= names.METRICS
    assert set(DIMENSION.findall(query)) <= names.ATTRIBUTES


def test_the_consent_alert_looks_for_the_change_type_the_code_publishes() -> None:
    consent = next(q for q in _queries() if "consent_revoked" in q)
    assert '"tenant.consent_revoked"' in consent
    published = (ROOT / "shared" / "service" / "tenants.py").read_text(encoding="utf-8")
    assert 'Change("tenant.consent_revoked"' in published


def test_alerts_notify_the_action_group_parameter_and_main_passes_it() -> None:
    tree = parse(ALERTS)
    assert "actionGroupId" in tree["parameters"]
    text = ALERTS.read_text(encoding="utf-8")
    assert "actionGroups: actionGroups" in text
    module = parse(MAIN)["modules"]["alerts"]["config"]
    assert module["params"]["actionGroupId"] == "alertActionGroupId"
