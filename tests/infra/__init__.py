"""Infra checks: Bicep syntax, the deployment contract with the code, packaging and checkov."""
