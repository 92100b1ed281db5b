"""The dual write the talk warns against, kept to show what it costs: two transactions, one
committed after the other. If the second write fails, or the process dies between the two
commits, the legacy DB has the write and the new DB does not, and nothing notices until the
reconciler runs. `DualWriter` in dual mode closes that gap; `bench/dualwrite.py` and
`tests/libs/dualwrite/test_faults.py` show both side by side."""

from __future__ import annotations

import sqlalchemy as sa

from libs.dualwrite.faults import Fault, no_fault
from libs.dualwrite.spec import MigrationSpec
from libs.dualwrite.writer import Builder, copy_generated_key


class NaiveSequentialWriter:
    def __init__(
        self, spec: MigrationSpec, legacy: sa.Engine, new: sa.Engine, *, fault: Fault = no_fault
    ) -> None:
        self.spec, self.legacy, self.new, self.fault = spec, legacy, new, fault

    def write(self, table: str, build: Builder) -> sa.Result:
        spec = self.spec.table(table)
        with self.legacy.begin() as conn:
            result = conn.execute(build(spec.legacy))
        self.fault("after_legacy_commit")
        with self.new.begin() as conn:
            self.fault("before_new_write")
            conn.execute(copy_generated_key(build(spec.new), result, spec))
        return result
