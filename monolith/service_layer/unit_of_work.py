"""The unit of work: one transaction per command. It rolls back unless `commit()` is called,
so a handler that raises halfway changes nothing."""

from __future__ import annotations

from types import TracebackType

import sqlalchemy as sa


class UnitOfWork:
    def __init__(self, engine: sa.Engine, *, readonly: bool = False) -> None:
        self.engine = engine
        self.readonly = readonly
        self.conn: sa.Connection

    def __enter__(self) -> UnitOfWork:
        self.conn = self.engine.connect()
        if self.readonly:
            self.conn = self.conn.execution_options(readonly=True)
        self._tx = self.conn.begin()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self._tx.is_active:
                self._tx.rollback()
        finally:
            self.conn.close()

    def commit(self) -> None:
        self._tx.commit()
