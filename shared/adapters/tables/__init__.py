"""Table Storage adapters, one module per concept.

`rows` holds what they all use (keys, entity values, guarded writes and deletes, the table client) and
`transactions` the entity-group transactions the connector writes itself; every other module is one
table and the port it implements:

| module | table | port |
|---|---|---|
| `tenants` | `tenants` | `TenantRepository` |
| `users` | `users` | `UserRepository` |
| `consent_states` | `consentstates` | `ConsentStateRepository` |
| `change_feed` | `changes` | `ChangeFeed` |
| `item_statuses` | `outlookitems` | `ItemStatusRepository` |
| `leases` | `leases` | `LeaseStore` |
| `subscription_index` | `subscriptions` | `SubscriptionIndex` |
| `dead_letters` | `deliveries` | `DeadLetterRepository` |
| `appointments` | `appointments` | `AppointmentRepository` |
| `busy` | `busy` | `BusyStore` |

Nothing is imported here: the composition root imports each adapter from its module when it builds it.
"""
