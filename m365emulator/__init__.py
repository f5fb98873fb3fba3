"""A local Microsoft 365: Entra ID, Microsoft Graph (the subset the connector uses) and Key Vault.

A development and test tool: never deployed. See README.md in this folder.
"""
