"""Microsoft Graph through msgraph-sdk: per-tenant clients, the directory, calendars, subscriptions."""
