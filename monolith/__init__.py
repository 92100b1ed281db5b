"""The legacy shop: members, products, orders and payments in one database (the legacy DB).
Every later stage is measured against it."""
