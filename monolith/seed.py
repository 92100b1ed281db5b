"""Demo catalogue: a small fashion shop (the talk's company sells fashion). Idempotent: seeds
only an empty products table."""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from monolith.adapters.tables import products

CATALOGUE = [
    ("TEE-001", "Organic cotton tee", 29000, 500),
    ("TEE-002", "Heavyweight pocket tee", 39000, 500),
    ("SHT-001", "Oxford button-down shirt", 69000, 300),
    ("KNT-001", "Merino crewneck knit", 119000, 200),
    ("PNT-001", "Wide chino trousers", 89000, 300),
    ("DNM-001", "Selvedge straight jeans", 159000, 150),
    ("JKT-001", "Chore jacket", 189000, 100),
    ("COT-001", "Wool balmacaan coat", 459000, 50),
    ("SNK-001", "Canvas low sneakers", 79000, 250),
    ("BAG-001", "Waxed canvas tote", 99000, 120),
    ("CAP-001", "Six-panel cap", 35000, 400),
    ("LTD-001", "Limited collaboration hoodie", 149000, 30),
]


def seed_catalogue(engine: sa.Engine) -> int:
    with engine.begin() as conn:
        if conn.scalar(sa.select(sa.func.count()).select_from(products)):
            return 0
        now = datetime.now(UTC)
        conn.execute(
            products.insert(),
            [
                {"sku": sku, "name": name, "price": price, "stock": stock, "updated_at": now}
                for sku, name, price, stock in CATALOGUE
            ],
        )
    return len(CATALOGUE)
