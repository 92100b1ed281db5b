"""The data-migration toolkit: move tables from the legacy DB to a service's own DB in the
talk's three steps (shared DB with batch sync, dual write in one transaction, single write),
and prove at each step that the two DBs agree (reconcile). Domain-free: a domain is a
`MigrationSpec`."""
