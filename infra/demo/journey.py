"""One scripted customer, start to end: signup, login, browse, order, pay (and retry the
payment), cancel, refund, plus the bad inputs a real client sends. Every step states what it
expects; a different answer is a violation."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from infra.demo.client import Reply, ShopClient


@dataclass
class Journey:
    client: ShopClient
    steps: list[tuple[str, str, bool]] = field(default_factory=list)  # (step, answer, passed)
    violations: list[str] = field(default_factory=list)
    retried_payments: list[tuple[int, str]] = field(default_factory=list)  # (order id, key)

    def expect(self, step: str, reply: Reply, status: int) -> Reply:
        answer = f"{reply.status} {reply.code or ''}".strip()
        self.check(step, reply.status == status, answer, f"expected {status}, got {answer}")
        return reply

    def check(self, step: str, passed: bool, answer: str, why: str) -> None:
        self.steps.append((step, answer, passed))
        if not passed:
            self.violations.append(f"{step}: {why}")

    async def run(self) -> None:
        c, email = self.client, f"jiwoo-{uuid.uuid4().hex[:8]}@example.com"
        self.expect(
            "signup",
            await c.call(
                "POST",
                "/api/members",
                json={"email": email, "password": "correct-horse", "name": "Jiwoo"},
            ),
            201,
        )
        login = self.expect(
            "login",
            await c.call(
                "POST", "/api/members/login", json={"email": email, "password": "correct-horse"}
            ),
            200,
        )
        token = login.data["token"]
        self.expect(
            "wrong password",
            await c.call(
                "POST", "/api/members/login", json={"email": email, "password": "wrong-horse"}
            ),
            401,
        )
        listing = self.expect("browse products", await c.call("GET", "/api/products"), 200)
        tee, knit = listing.data["items"][0], listing.data["items"][3]
        self.expect("product detail", await c.call("GET", f"/api/products/{tee['id']}"), 200)
        self.expect(
            "update profile",
            await c.call("PATCH", "/api/members/me", token=token, json={"phone": "010-1234-5678"}),
            200,
        )

        order = await self._order(token, [(tee, 2), (knit, 1)], "place order")
        key = f"pay-{uuid.uuid4()}"
        first = await self._pay(order["id"], token, key, "pay (Idempotency-Key)", 201)
        again = await self._pay(order["id"], token, key, "retry the same payment", 201)
        replayed = again.data["id"] == first.data["id"]
        replayed = replayed and again.headers.get("idempotency-replayed") == "true"
        self.check(
            "retry replays the first payment",
            replayed,
            f"payment {again.data['id']}",
            "the retry did not replay the first payment",
        )
        self.retried_payments.append((order["id"], key))
        points = self.expect(
            "points earned (1%)", await c.call("GET", "/api/members/me/points", token=token), 200
        )
        balance = points.data["balance"]
        self.check(
            "balance is 1% of the total",
            balance == order["total"] // 100,
            f"{balance} points",
            f"balance {balance} for a total of {order['total']}",
        )

        second = await self._order(token, [(tee, 1)], "place a second order")
        self.expect(
            "cancel it",
            await c.call("POST", f"/api/orders/{second['id']}/cancel", token=token),
            200,
        )
        self.expect(
            "cancel it again",
            await c.call("POST", f"/api/orders/{second['id']}/cancel", token=token),
            409,
        )
        self.expect(
            "refund the payment",
            await c.call("POST", f"/api/payments/{first.data['id']}/refund", token=token),
            200,
        )
        self.expect(
            "refund it again",
            await c.call("POST", f"/api/payments/{first.data['id']}/refund", token=token),
            409,
        )
        await self._bad_inputs(token, tee["id"])

    async def _order(self, token: str, lines, step: str) -> dict:
        items = [{"product_id": p["id"], "quantity": q} for p, q in lines]
        reply = self.expect(
            step,
            await self.client.call("POST", "/api/orders", token=token, json={"items": items}),
            201,
        )
        expected = sum(p["price"] * q for p, q in lines)
        got = reply.data["total"]
        self.check(f"{step}: total", got == expected, f"{got} KRW", f"total {got} != {expected}")
        return reply.data

    async def _pay(self, order_id: int, token: str, key: str, step: str, status: int) -> Reply:
        return self.expect(
            step,
            await self.client.call(
                "POST",
                "/api/payments",
                token=token,
                json={"order_id": order_id, "method": "card"},
                headers={"Idempotency-Key": key},
            ),
            status,
        )

    async def _bad_inputs(self, token: str, product_id: int) -> None:
        c = self.client
        before = (await c.call("GET", f"/api/products/{product_id}")).data["stock"]
        cases: list[tuple[str, str, str, dict[str, Any], int]] = [
            (
                "bad JSON",
                "POST",
                "/api/orders",
                {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
                400,
            ),
            (
                "negative quantity",
                "POST",
                "/api/orders",
                {"json": {"items": [{"product_id": product_id, "quantity": -1}]}},
                422,
            ),
            (
                "huge quantity",
                "POST",
                "/api/orders",
                {"json": {"items": [{"product_id": product_id, "quantity": 10**12}]}},
                422,
            ),
            (
                "quantity as text",
                "POST",
                "/api/orders",
                {"json": {"items": [{"product_id": product_id, "quantity": "2"}]}},
                422,
            ),
            (
                "unknown product",
                "POST",
                "/api/orders",
                {"json": {"items": [{"product_id": 10**9, "quantity": 1}]}},
                404,
            ),
            ("unknown order", "GET", "/api/orders/999999999", {}, 404),
            ("wrong method", "DELETE", "/api/products", {}, 405),
        ]
        for step, method, path, extra, status in cases:
            self.expect(step, await c.call(method, path, token=token, **extra), status)
        self.expect("no token", await c.call("GET", "/api/orders"), 401)
        after = (await c.call("GET", f"/api/products/{product_id}")).data["stock"]
        self.check(
            "bad input changed nothing",
            before == after,
            f"stock {after}",
            f"stock moved from {before} to {after}",
        )
