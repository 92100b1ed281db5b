"""An extracted service's one door to its data. Which DB a call reaches is the data mode's
decision, never a handler's:

- writes go through the toolkit's `DualWriter` (shared: legacy DB; dual: both DBs in one
  transaction; single: the service's DB);
- plain reads go to the DB of record: the legacy DB in shared mode (the talk: the old DB takes
  all reads while the sync job fills the new one), the service's DB in dual and single mode.

Statements are builders, `lambda t: ...`, given the table of whichever DB runs them; the two
sides have the same columns, so one builder serves both."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import sqlalchemy as sa

from libs.dualwrite import DualWriter, MigrationSpec, Mode, ModeSwitch, WriteTransaction
from libs.events.envelope import Event
from libs.events.outbox import Outbox
from libs.state_file import StateFile

Builder = Callable[[sa.Table], sa.Executable]


@dataclass
class ReadTransaction:
    spec: MigrationSpec
    conn: sa.Connection
    legacy: bool

    def read(self, table: str, build: Builder) -> sa.Result:
        spec = self.spec.table(table)
        return self.conn.execute(build(spec.legacy if self.legacy else spec.new))


Reads = ReadTransaction | WriteTransaction  # both answer `.read(table, build)`


class ExtractionData:
    def __init__(self, writer: DualWriter, state: StateFile | None = None) -> None:
        self.writer = writer
        self.state = state  # where the data mode is kept across restarts

    @property
    def switch(self) -> ModeSwitch:
        return self.writer.switch

    @property
    def mode(self) -> Mode:
        return self.writer.switch.mode

    @contextmanager
    def writing(self) -> Iterator[WriteTransaction]:
        """Commits when the block ends normally, rolls back when it raises."""
        with self.writer.transaction() as tx:
            yield tx

    @contextmanager
    def reading(self) -> Iterator[ReadTransaction]:
        # Not held like a write: the DB a read picks stays complete through any switch (legacy
        # from shared into dual, the new DB from dual on and back into dual), so a read never
        # waits for a switch, which may take seconds draining the sync job under load.
        legacy = self.mode is Mode.SHARED
        engine = self.writer.legacy if legacy else self.writer.new
        with engine.connect() as conn:
            conn = conn.execution_options(readonly=True)
            with conn.begin():
                yield ReadTransaction(self.writer.spec, conn, legacy)

    def announce(self, tx: WriteTransaction, outbox: Outbox, topic: str, event: Event) -> None:
        """Queues `event` in the outbox of the DB whose commit makes the change real, in the
        write's own transaction: the legacy DB's in shared mode (the service writes the
        legacy DB, its outbox included, and the monolith's relay publishes what lands there),
        the service's own from dual write on (its own relay publishes it; in dual mode the
        same transaction also writes the legacy tables). Both outboxes have one shape
        (libs/events/outbox.py), so `outbox` is the service's table."""
        run = tx.new if tx.new is not None else tx.legacy
        assert run is not None  # a write transaction always reaches at least one DB
        run(outbox.insert(topic, event))

    # --- the live switch (shared -> dual -> single, and back one step at a time) ---

    def describe(self) -> dict[str, object]:
        return {"migration": self.writer.spec.name, "mode": self.mode.value}

    def change_mode(self, target: Mode) -> dict[str, object]:
        """The toolkit's `ModeSwitch` runs the hooks: draining the sync job on shared -> dual,
        the reconcile guard, sequence alignment and the legacy freeze on dual -> single.
        Raises what the toolkit raises when a move is refused; nothing changes then."""
        previous = self.mode
        if target is not previous:
            if target is Mode.DUAL:
                self.writer.check()  # two-phase commit must be possible before anything moves
            self.switch.switch_to(target)
            if self.state is not None:
                self.state.save({"mode": target.value, "changed_at": time.time()})
        return self.describe() | {"previous": previous.value, "changed": target is not previous}
