"""Dual-write benchmark: write latency per data mode, and the sync job's throughput and lag.

    .venv/bin/python bench/dualwrite.py [--writes 600] [--sync-rows 5000] [--load-seconds 5]
        [--rate 200] [--postgres-url postgresql+psycopg://postgres@127.0.0.1:5432/postgres]

On SQLite files and on two fresh PostgreSQL databases (skipped with a note when the server
is absent), it measures, side by side in one run:
- the latency of one write (add points to a member) in each mode: legacy only (shared mode,
  capture trigger included), dual write in one transaction (ATTACH / two-phase commit),
  single write, and the naive sequential dual write for comparison;
- the sync job's throughput (rows/s) draining a backlog;
- the sync lag while a writer keeps changing rows at --rate writes/s.
It is a script, not a timed test.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import sqlalchemy as sa

from libs.db.sqlite import sqlite_engine
from libs.dualwrite.capture import install_change_capture
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.naive import NaiveSequentialWriter
from libs.dualwrite.spec import MigrationSpec, TableSpec, mirror
from libs.dualwrite.sync_job import SyncJob, install_sync_cursor
from libs.dualwrite.twophase import install_decision_log
from libs.dualwrite.writer import DualWriter
from monolith.adapters import tables

NEW_METADATA = sa.MetaData()
_NEW = mirror([tables.members, tables.point_ledger], NEW_METADATA)
SPEC = MigrationSpec(
    "members",
    (
        TableSpec(tables.members, _NEW["members"]),
        TableSpec(tables.point_ledger, _NEW["point_ledger"]),
    ),
)
MEMBERS = 200


def member(n: int) -> dict:
    now = datetime.now(UTC)
    return {
        "email": f"m{n}-{uuid.uuid4().hex[:6]}@example.com",
        "password_hash": "x",
        "name": f"m{n}",
        "points": 0,
        "created_at": now,
        "updated_at": now,
    }


@contextmanager
def sqlite_pair() -> Iterator[tuple[sa.Engine, sa.Engine]]:
    with tempfile.TemporaryDirectory(prefix="dualwrite-bench-") as tmp:
        legacy, new = (
            sqlite_engine(f"sqlite:///{tmp}/legacy.db"),
            sqlite_engine(f"sqlite:///{tmp}/new.db"),
        )
        try:
            yield legacy, new
        finally:
            legacy.dispose()
            new.dispose()


@contextmanager
def postgres_pair(admin_url: str) -> Iterator[tuple[sa.Engine, sa.Engine]]:
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    names = [f"bench_dw_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    with admin.connect() as conn:
        for name in names:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    url = sa.engine.make_url(admin_url)
    engines = [sa.create_engine(url.set(database=n), pool_size=10) for n in names]
    try:
        yield engines[0], engines[1]
    finally:
        for engine in engines:
            engine.dispose()
        with admin.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def prepare(legacy: sa.Engine, new: sa.Engine) -> list[int]:
    with legacy.begin() as conn:
        tables.metadata.create_all(conn, tables=[tables.members, tables.point_ledger])
        install_change_capture(conn, SPEC)
        install_decision_log(conn)
        ids = [
            conn.execute(tables.members.insert().values(member(n))).inserted_primary_key[0]
            for n in range(MEMBERS)
        ]
    with new.begin() as conn:
        NEW_METADATA.create_all(conn)
        install_sync_cursor(conn)
    SyncJob(SPEC, legacy, new).drain()
    return ids


def add_points(member_id: int) -> Callable[[sa.Table], sa.Executable]:
    return lambda t: t.update().where(t.c.id == member_id).values(points=t.c.points + 1)


def percentile(samples: list[float], q: float) -> float:
    return (
        statistics.quantiles(samples, n=100, method="inclusive")[q - 1]
        if len(samples) > 1
        else samples[0]
    )


def latencies(
    legacy: sa.Engine, new: sa.Engine, ids: list[int], writes: int
) -> dict[str, list[float]]:
    # Each writer on its own engine copy (one pool): the single-mode writer's freeze guard
    # belongs to its copy and does not refuse the shared-mode writer's legacy writes.
    writers = {
        mode: DualWriter(
            SPEC, legacy.execution_options(), new, switch=ModeSwitch(mode), freeze_triggers=False
        )
        for mode in Mode
    }
    naive = NaiveSequentialWriter(SPEC, legacy, new)

    def through(mode: Mode) -> Callable[[int], None]:
        def write(member_id: int) -> None:
            with writers[mode].transaction() as tx:
                tx.write("members", add_points(member_id))

        return write

    runners = {
        "legacy only (shared)": through(Mode.SHARED),
        "dual, one transaction": through(Mode.DUAL),
        "single (new DB)": through(Mode.SINGLE),
        "naive sequential dual": lambda member_id: naive.write("members", add_points(member_id)),
    }
    samples: dict[str, list[float]] = {name: [] for name in runners}
    rng = random.Random(1)
    rounds = 6
    for _ in range(rounds):  # interleaved, so drift in machine load hits every mode alike
        for name, run in runners.items():
            for _ in range(writes // rounds):
                started = time.perf_counter()
                run(rng.choice(ids))
                samples[name].append((time.perf_counter() - started) * 1000)
    for writer in writers.values():
        writer.close()
    return samples


def sync_throughput(legacy: sa.Engine, new: sa.Engine, rows: int) -> float:
    with legacy.begin() as conn:
        for start in range(0, rows, 500):
            conn.execute(
                tables.members.insert(), [member(n) for n in range(start, min(rows, start + 500))]
            )
    job = SyncJob(SPEC, legacy, new, batch_size=500)
    started = time.perf_counter()
    applied = job.drain()
    return applied / (time.perf_counter() - started)


def lag_under_load(
    legacy: sa.Engine, new: sa.Engine, ids: list[int], seconds: float, rate: float
) -> dict[str, float]:
    job = SyncJob(SPEC, legacy, new, batch_size=500)
    stop_writing = threading.Event()
    written = 0

    def writer() -> None:
        nonlocal written
        rng, interval = random.Random(2), 1.0 / rate
        next_at = time.perf_counter()
        while not stop_writing.is_set():
            with legacy.begin() as conn:
                conn.execute(add_points(rng.choice(ids))(tables.members))
            written += 1
            next_at += interval
            time.sleep(max(0.0, next_at - time.perf_counter()))

    async def run() -> tuple[list[float], float]:
        stop = asyncio.Event()
        loop = asyncio.create_task(job.run(interval=0.2, stop=stop))
        thread = threading.Thread(target=writer)
        thread.start()
        lags: list[float] = []
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            await asyncio.sleep(0.25)
            lags.append((await asyncio.to_thread(job.pending))[1])
        stop_writing.set()
        thread.join()
        stopped = time.perf_counter()
        await asyncio.to_thread(wait_until_synced, job)
        caught_up = time.perf_counter() - stopped
        stop.set()
        await loop
        return lags, caught_up

    lags, caught_up = asyncio.run(run())
    return {
        "writes/s": written / seconds,
        "lag p50 s": statistics.median(lags),
        "lag max s": max(lags),
        "catch-up s": caught_up,
    }


def wait_until_synced(job: SyncJob) -> None:
    while job.pending()[0]:
        time.sleep(0.05)


def bench(label: str, pair, args) -> None:
    with pair as (legacy, new):
        ids = prepare(legacy, new)
        samples = latencies(legacy, new, ids, args.writes)
        base = statistics.median(samples["legacy only (shared)"])
        print(f"\n{label}: write latency, {args.writes // 6 * 6} writes per mode (ms)")
        print(f"  {'mode':<24}{'p50':>8}{'p99':>8}{'p50 vs legacy':>15}")
        for name, values in samples.items():
            p50, p99 = statistics.median(values), percentile(values, 99)
            print(f"  {name:<24}{p50:>8.2f}{p99:>8.2f}{p50 / base:>14.2f}x")
        throughput = sync_throughput(legacy, new, args.sync_rows)
        print(
            f"{label}: sync job drains a backlog of {args.sync_rows} inserts "
            f"at {throughput:,.0f} rows/s"
        )
        lag = lag_under_load(legacy, new, ids, args.load_seconds, args.rate)
        print(
            f"{label}: under {lag['writes/s']:.0f} writes/s for {args.load_seconds:g}s "
            f"the sync lag was p50 {lag['lag p50 s']:.2f}s, max {lag['lag max s']:.2f}s; caught up "
            f"{lag['catch-up s']:.2f}s after the load stopped"
        )


def postgres_ready(url: str) -> str | None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            if int(conn.exec_driver_sql("SHOW max_prepared_transactions").scalar_one()) == 0:
                return "max_prepared_transactions is 0 (see docs/dualwrite.md)"
        return None
    except sa.exc.OperationalError as exc:
        return f"not reachable: {exc.orig}"
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=600)
    parser.add_argument("--sync-rows", type=int, default=5000)
    parser.add_argument("--load-seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument(
        "--postgres-url", default="postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    )
    args = parser.parse_args()
    bench("SQLite", sqlite_pair(), args)
    problem = postgres_ready(args.postgres_url)
    if problem:
        print(f"\nPostgreSQL skipped: {problem}")
    else:
        bench("PostgreSQL", postgres_pair(args.postgres_url), args)


if __name__ == "__main__":
    main()
