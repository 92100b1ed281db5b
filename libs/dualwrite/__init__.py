"""The data-migration toolkit: move tables from the legacy DB to a service's own DB in the
talk's three steps (shared DB with batch sync, dual write in one transaction, single write),
and prove at each step that the two DBs agree (reconcile). Domain-free: a domain is a
`MigrationSpec`. See docs/dualwrite.md."""

from libs.db.sqlite import sqlite_engine
from libs.dualwrite.capture import install_change_capture, uninstall_change_capture
from libs.dualwrite.cutover import DriftBlocksCutover, align_sequences
from libs.dualwrite.freeze import FrozenTableError, frozen_tables, install_freeze_triggers
from libs.dualwrite.modes import Mode, ModeSwitch
from libs.dualwrite.reconcile import DriftReport, Reconciler
from libs.dualwrite.spec import ExternalReference, MigrationSpec, TableSpec, mirror
from libs.dualwrite.sync_job import SyncJob, SyncResult, install_sync_cursor
from libs.dualwrite.twophase import RecoveryReport, install_decision_log
from libs.dualwrite.writer import DivergedWrite, DualWriter, WriteTransaction

__all__ = [
    "DivergedWrite",
    "DriftBlocksCutover",
    "DriftReport",
    "DualWriter",
    "ExternalReference",
    "FrozenTableError",
    "MigrationSpec",
    "Mode",
    "ModeSwitch",
    "Reconciler",
    "RecoveryReport",
    "SyncJob",
    "SyncResult",
    "TableSpec",
    "WriteTransaction",
    "align_sequences",
    "frozen_tables",
    "install_change_capture",
    "install_decision_log",
    "install_freeze_triggers",
    "install_sync_cursor",
    "mirror",
    "sqlite_engine",
    "uninstall_change_capture",
]
