"""The runtime every extracted service shares, whatever its tables: the data mode and its
live switch, the read and write transactions each mode chooses, the admin data-mode route,
the start-up checks, and the app built around them. A service adds only what is its own
(its routes, its gRPC server, its consumers): services/member is built on it, and so is the
throwaway extraction of tests/infra/test_throwaway_extraction.py."""

from libs.extraction.app import ExtractionConfig, create_extraction_app
from libs.extraction.data import ExtractionData, Reads, ReadTransaction
from libs.extraction.runtime import (
    FrozenLegacyTables,
    LegacySchemaMissing,
    NewSchemaMissing,
    every,
    extraction_runtime,
)

__all__ = [
    "ExtractionConfig",
    "ExtractionData",
    "FrozenLegacyTables",
    "LegacySchemaMissing",
    "NewSchemaMissing",
    "ReadTransaction",
    "Reads",
    "create_extraction_app",
    "every",
    "extraction_runtime",
]
