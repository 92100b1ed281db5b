"""A process that makes one write and dies at an injected point, as a kill -9 would:
`python -m tests.libs.dualwrite.crasher naive|dual POINT LEGACY_URL NEW_URL MEMBER_ID`.
With `loop` it makes dual writes until it is killed from outside."""

from __future__ import annotations

import sys

from libs.dualwrite.faults import exit_at
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.naive import NaiveSequentialWriter
from libs.dualwrite.writer import DualWriter
from tests.libs.dualwrite.conftest import make_engine
from tests.libs.dualwrite.schema import MEMBERS

KILLED = 86


def main(kind: str, point: str, legacy_url: str, new_url: str, member_id: int) -> int:
    legacy, new = make_engine(legacy_url), make_engine(new_url)
    fault = exit_at(point, KILLED)

    def add_points(t):
        return t.update().where(t.c.id == member_id).values(points=t.c.points + 10)

    if kind == "naive":
        NaiveSequentialWriter(MEMBERS, legacy, new, fault=fault).write("members", add_points)
        return 0
    writer = DualWriter(MEMBERS, legacy, new, switch=ModeSwitch(Mode.DUAL), fault=fault)
    while True:
        with writer.transaction() as tx:
            tx.write("members", add_points)
        if kind != "loop":
            return 0


if __name__ == "__main__":
    kind, point, legacy_url, new_url, member_id = sys.argv[1:]
    sys.exit(main(kind, point, legacy_url, new_url, int(member_id)))
