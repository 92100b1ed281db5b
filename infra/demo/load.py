"""A short concurrent load: many members ordering at once, many of them the same limited
item, paying (sometimes twice with one key, as a client retrying after a lost reply),
cancelling and refunding. Afterwards the database must still add up."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field

from infra.demo.client import ShopClient

EXPECTED_REFUSALS = {"OUT_OF_STOCK"}


@dataclass
class LoadResult:
    orders_placed: int = 0
    payments: int = 0
    # order, key, ids (the retry's id is None when its answer has none)
    retries: list[tuple[int, str, int, int | None]] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)
    violations: list[str] = field(default_factory=list)


async def run_load(
    client: ShopClient, products: list[dict], workers: int, rounds: int, seed: int = 29
) -> LoadResult:
    result = LoadResult()
    hot = next((p for p in products if p["sku"].startswith("LTD")), products[0])
    await asyncio.gather(
        *(
            _customer(client, products, hot, rounds, random.Random(seed + n), result)
            for n in range(workers)
        )
    )
    return result


async def _customer(client, products, hot, rounds, rng: random.Random, result: LoadResult):
    email = f"load-{uuid.uuid4().hex[:10]}@example.com"
    await client.call(
        "POST", "/api/members", json={"email": email, "password": "load-password", "name": "Load"}
    )
    login = await client.call(
        "POST", "/api/members/login", json={"email": email, "password": "load-password"}
    )
    if login.status != 200:
        result.violations.append(f"load login failed: {login.status} {login.code}")
        return
    token = login.data["token"]
    for _ in range(rounds):
        await client.call("GET", "/api/products", token=token)
        lines = [hot] if rng.random() < 0.4 else rng.sample(products, k=rng.randint(1, 2))
        items = [{"product_id": p["id"], "quantity": rng.randint(1, 2)} for p in lines]
        placed = await client.call("POST", "/api/orders", token=token, json={"items": items})
        if placed.status != 201:
            _refused(result, placed.code, "place order")
            continue
        result.orders_placed += 1
        await _after_order(client, token, placed.data["id"], rng, result)


async def _after_order(client, token, order_id, rng: random.Random, result: LoadResult):
    roll = rng.random()
    if roll < 0.2:
        await client.call("POST", f"/api/orders/{order_id}/cancel", token=token)
        return
    if roll > 0.85:
        return  # left unpaid, as real carts are
    key = f"pay-{uuid.uuid4()}"
    body = {"order_id": order_id, "method": "card"}
    paid = await client.call(
        "POST", "/api/payments", token=token, json=body, headers={"Idempotency-Key": key}
    )
    if paid.status != 201:
        _refused(result, paid.code, "pay")
        return
    result.payments += 1
    if rng.random() < 0.3:
        again = await client.call(
            "POST", "/api/payments", token=token, json=body, headers={"Idempotency-Key": key}
        )
        result.retries.append((order_id, key, paid.data["id"], (again.data or {}).get("id")))
    if rng.random() < 0.15:
        await client.call("POST", f"/api/payments/{paid.data['id']}/refund", token=token)


def _refused(result: LoadResult, code: str | None, what: str) -> None:
    result.refusals[code or "?"] = result.refusals.get(code or "?", 0) + 1
    if code not in EXPECTED_REFUSALS:
        result.violations.append(f"{what} refused unexpectedly: {code}")
