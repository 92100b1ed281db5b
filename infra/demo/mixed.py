"""The continuous mixed load the stage walk runs under: members signing up, logging in, updating
their profile and reading it, reading their page (/api/views), and ordering: placing orders,
cancelling some, paying the others by card or with points, retrying payments with the same
Idempotency-Key, refunding some. Payments move points (the coupling with the member service) and
stock (the coupling with the catalogue, which stays in the monolith). It never stops while a
stage is applied; it pauses only while a stage's checks read the databases.

Every write the system acknowledges is remembered (`Acked`), so each stage can check that it is
in the database the stage says owns it."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import dataclass, field

from infra.demo.client import ShopClient

PASSWORD = "mixed-password"
# Refusals the load provokes on purpose: a hot item selling out, a points payment larger than
# the balance; and, once the read model serves /api/views (stage 9), the page of a member who
# signed up a moment ago, whose event has not reached it yet.
EXPECTED = {"OUT_OF_STOCK", "INSUFFICIENT_POINTS", "VIEW_NOT_FOUND"}
ACTIONS = (
    ("signup", 8),
    ("login", 8),
    ("profile", 20),
    ("read", 24),
    ("points", 10),
    ("page", 30),
    ("order", 40),
)


@dataclass
class Member:
    id: int
    email: str
    token: str


@dataclass(frozen=True)
class AckedPayment:
    member: int
    order: int
    points_earned: int
    key: str  # its Idempotency-Key


@dataclass
class Acked:
    members: dict[int, str] = field(default_factory=dict)  # id -> email
    profiles: dict[int, str] = field(default_factory=dict)  # id -> the last name acknowledged
    orders: dict[int, int] = field(default_factory=dict)  # id -> total
    cancels: set[int] = field(default_factory=set)  # order ids
    payments: dict[int, AckedPayment] = field(default_factory=dict)
    refunds: set[int] = field(default_factory=set)  # payment ids
    retries: int = 0  # payments sent again with their key, each answered the first result


@dataclass
class MixedLoad:
    client: ShopClient
    products: list[dict]
    workers: int = 6
    seed: int = 29
    acked: Acked = field(default_factory=Acked)
    violations: list[str] = field(default_factory=list)
    refusals: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._go = asyncio.Event()
        self._go.set()
        self._stop = False
        self._busy = 0
        self._idle = asyncio.Condition()
        self._tasks: list[asyncio.Task] = []

    def start(self) -> None:
        self._tasks = [
            asyncio.create_task(self._worker(random.Random(self.seed + n)))
            for n in range(self.workers)
        ]

    async def pause(self) -> None:
        """Returns once no request is in flight; the workers wait until `resume()`."""
        self._go.clear()
        async with self._idle:
            await self._idle.wait_for(lambda: self._busy == 0)

    def resume(self) -> None:
        self._go.set()

    async def stop(self) -> None:
        self._stop = True
        self._go.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _worker(self, rng: random.Random) -> None:
        mine: list[Member] = []
        names, weights = zip(*ACTIONS, strict=True)
        while not self._stop:
            await self._go.wait()
            if self._stop:
                return
            self._busy += 1
            try:
                action = "signup" if not mine else rng.choices(names, weights)[0]
                await getattr(self, f"_{action}")(rng, mine)
            except Exception as exc:  # a broken system must end in a report, not a traceback
                self.violations.append(f"{action}: {exc!r}")
                await asyncio.sleep(0.2)
            finally:
                self._busy -= 1
                async with self._idle:
                    self._idle.notify_all()

    async def _signup(self, rng: random.Random, mine: list[Member]) -> None:
        email = f"mixed-{uuid.uuid4().hex[:12]}@example.com"
        body = {"email": email, "password": PASSWORD, "name": "Mixed"}
        created = await self.client.call("POST", "/api/members", json=body)
        if not self._ok(created, 201, "signup"):
            return
        self.acked.members[created.data["id"]] = email
        self.acked.profiles[created.data["id"]] = "Mixed"
        login = await self._log_in(email)
        if login is not None:
            mine.append(Member(created.data["id"], email, login))

    async def _login(self, rng: random.Random, mine: list[Member]) -> None:
        member = rng.choice(mine)
        token = await self._log_in(member.email)
        if token is not None:
            member.token = token

    async def _log_in(self, email: str) -> str | None:
        body = {"email": email, "password": PASSWORD}
        login = await self.client.call("POST", "/api/members/login", json=body)
        return login.data["token"] if self._ok(login, 200, "login") else None

    async def _profile(self, rng: random.Random, mine: list[Member]) -> None:
        member = rng.choice(mine)
        name = f"Mixed {rng.randint(1, 10**6)}"
        changed = await self.client.call(
            "PATCH", "/api/members/me", token=member.token, json={"name": name}
        )
        if self._ok(changed, 200, "profile update"):
            self.acked.profiles[member.id] = name

    async def _read(self, rng: random.Random, mine: list[Member]) -> None:
        member = rng.choice(mine)
        me = await self.client.call("GET", "/api/members/me", token=member.token)
        if self._ok(me, 200, "read profile") and me.data["id"] != member.id:
            self.violations.append(f"member {member.id} read member {me.data['id']}'s profile")

    async def _page(self, rng: random.Random, mine: list[Member]) -> None:
        """My page: composed by the monolith from the owners until stage 9, then the read
        model's view."""
        member = rng.choice(mine)
        page = await self.client.call("GET", "/api/views/my-page", token=member.token)
        if self._ok(page, 200, "my page") and page.data["member"]["id"] != member.id:
            self.violations.append(
                f"member {member.id} got member {page.data['member']['id']}'s page"
            )

    async def _points(self, rng: random.Random, mine: list[Member]) -> None:
        member = rng.choice(mine)
        self._ok(
            await self.client.call("GET", "/api/members/me/points", token=member.token),
            200,
            "read points",
        )

    async def _order(self, rng: random.Random, mine: list[Member]) -> None:
        member = rng.choice(mine)
        product = rng.choice(self.products)
        items = [{"product_id": product["id"], "quantity": 1}]
        placed = await self.client.call(
            "POST", "/api/orders", token=member.token, json={"items": items}
        )
        if not self._ok(placed, 201, "place order"):
            return
        order_id = placed.data["id"]
        self.acked.orders[order_id] = placed.data["total"]
        if rng.random() < 0.12:
            cancelled = await self.client.call(
                "POST", f"/api/orders/{order_id}/cancel", token=member.token
            )
            if self._ok(cancelled, 200, "cancel order"):
                self.acked.cancels.add(order_id)
            return
        key = f"mixed-{uuid.uuid4()}"
        method = "points" if rng.random() < 0.15 else "card"
        body = {"order_id": order_id, "method": method}
        paid = await self._pay(member, body, key)
        if paid is None:
            return
        payment = AckedPayment(member.id, order_id, paid["points_earned"], key)
        self.acked.payments[paid["id"]] = payment
        if rng.random() < 0.2:  # the answer "was lost": the client sends it again
            again = await self._pay(member, body, key)
            self.acked.retries += 1
            if again is not None and again["id"] != paid["id"]:
                self.violations.append(
                    f"order {order_id}: a retry with key {key} answered payment {again['id']}, "
                    f"the first answer was {paid['id']}"
                )
        if rng.random() < 0.1:
            refund = await self.client.call(
                "POST", f"/api/payments/{paid['id']}/refund", token=member.token
            )
            if self._ok(refund, 200, "refund"):
                self.acked.refunds.add(paid["id"])

    async def _pay(self, member: Member, body: dict, key: str) -> dict | None:
        paid = await self.client.call(
            "POST", "/api/payments", token=member.token, json=body, headers={"Idempotency-Key": key}
        )
        return paid.data if self._ok(paid, 201, "pay") else None

    def _ok(self, reply, status: int, what: str) -> bool:
        if reply.status == status:
            return True
        code = reply.code or str(reply.status)
        self.refusals[code] = self.refusals.get(code, 0) + 1
        if code not in EXPECTED:
            self.violations.append(f"{what}: expected {status}, got {reply.status} {code}")
        return False
