"""The local instance's event log: Dagster's run-sharded SQLite storage, with one pooled connection per database file.

Every Dagster event of a run (step started, asset materialized, each dbt test's check planned and evaluated...) is a
row in the run's SQLite shard, and asset and check events are mirrored into the cross-run `index.db`. A closed-loop
day writes about 600 events in about 1,900 commits. Dagster's `SqliteEventLogStorage` opens a new engine and
connection for every read and write (`NullPool`) with SQLite's default `synchronous=FULL`, and closing the last
connection to a WAL database checkpoints the WAL into the database file: every commit paid for a connection, an fsync
and a checkpoint: a quarter to a half of a loop day's wall time, the more the busier the disk (`python -m
benchmarks.event_log` measures it side by side).

`PooledSqliteEventLogStorage` keeps the same files, schema and layout (`<DAGSTER_HOME>/history/runs/<run>.db` and
`index.db`, so an existing instance keeps its history) and changes only how they are opened:

- one engine per database file, kept while the process lives (the most recently used few: a webserver reads many
  runs), so a commit no longer pays for a connection, a checkpoint and an engine;
- WAL journal mode (Dagster already creates the files in WAL) with `synchronous=NORMAL`: a commit reaches the WAL
  without an fsync, so it survives the process crashing, and only an OS crash or power loss can roll back the last
  commits, never corrupt the file (https://www.sqlite.org/pragma.html#pragma_synchronous). The webserver, the daemon
  and run workers open the same files concurrently, as WAL allows on one host;
- watching a run (the UI's live run log) also wakes on the shard's `-wal` file: with the connection kept open, commits
  land there, and the database file changes only at a checkpoint.

Production uses Postgres (deploy/dagster.yaml); this is the demo's and `make ui`'s instance only.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    SqliteEventLogStorage,
    SqliteEventLogStorageWatchdog,
)
from dagster._core.storage.sqlite import SQLITE_BUSY_TIMEOUT_SECONDS
from dagster._serdes import ConfigurableClassData
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import QueuePool
from watchdog.events import FileSystemEvent
from watchdog.observers import Observer

# Files kept open per process: the index and the runs being written or read. Older ones are closed (and their WAL
# checkpointed) when a new one is opened, so a webserver browsing many runs does not keep them all open.
MAX_OPEN_SHARDS = 8


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """Dagster's run-sharded SQLite event log on pooled WAL connections with `synchronous=NORMAL`.

    `base_dir` is the instance's root (DAGSTER_HOME), as in `storage: sqlite: base_dir`: the shards live under
    `history/runs/` there, where Dagster's default storage keeps them.
    """

    SYNCHRONOUS = "NORMAL"

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._root = base_dir
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._engines_pid = os.getpid()
        self._tables_found: set[str] = set()
        super().__init__(os.path.join(base_dir, "history", "runs"), inst_data=inst_data)

    @classmethod
    def config_type(cls) -> dict:
        return {"base_dir": dg.StringSource}

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Any
    ) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _on_connect(self, dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute(f"PRAGMA synchronous={self.SYNCHRONOUS}")
        cursor.close()

    def _engine(self, shard: str) -> Engine:
        """The shard's engine, created on first use; the least recently used beyond MAX_OPEN_SHARDS is closed."""
        if self._engines_pid != os.getpid():
            # a forked child must not use its parent's SQLite handles: forget them without closing them
            for engine in self._engines.values():
                engine.dispose(close=False)
            self._engines.clear()
            self._engines_pid = os.getpid()
        engine = self._engines.get(shard)
        if engine is None:
            engine = sa.create_engine(
                self.conn_string_for_shard(shard),
                poolclass=QueuePool,
                pool_size=1,  # the storage's lock serialises its use (Dagster's schema set-up opens a 2nd briefly)
                connect_args={"timeout": SQLITE_BUSY_TIMEOUT_SECONDS, "check_same_thread": False},
            )
            sa.event.listen(engine, "connect", self._on_connect)
            self._engines[shard] = engine
            while len(self._engines) > MAX_OPEN_SHARDS:
                self._engines.popitem(last=False)[1].dispose()
        self._engines.move_to_end(shard)
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # as SqliteEventLogStorage._connect, on the shard's kept engine instead of a new one each time
        with self._db_lock:
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def has_table(self, table_name: str) -> bool:
        # Dagster asks SQLite on a new engine and connection every time, and it asks before storing every asset
        # check event (`supports_asset_checks`): about a hundred times a loop day. A table, once there, stays: only
        # a table not found yet is asked again.
        if table_name not in self._tables_found:
            if not super().has_table(table_name):
                return False
            self._tables_found.add(table_name)
        return True

    def _close_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._close_engines()  # the run shards are deleted: no connection may keep writing to a deleted file
        self._tables_found.clear()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._close_engines()

    def watch(self, run_id: str, cursor: str | None, callback: Any) -> None:
        # as SqliteEventLogStorage.watch, with a watchdog that also wakes on the shard's WAL file
        if not self._obs:
            self._obs = Observer()
            self._obs.start()
        watchdog = _WalWatchdog(self, run_id, callback, cursor)
        self._watchers[run_id][callback] = (watchdog, self._obs.schedule(watchdog, self._base_dir, recursive=True))


class _WalWatchdog(SqliteEventLogStorageWatchdog):
    """Dagster's run watchdog, woken by the shard's `-wal` file too (where commits land while connections stay open)."""

    def __init__(self, storage: PooledSqliteEventLogStorage, run_id: str, callback: Any, cursor: str | None):
        super().__init__(storage, run_id, callback, cursor)
        self._patterns = [self._log_path, f"{self._log_path}-wal"]

    def on_modified(self, event: FileSystemEvent) -> None:
        self._process_log()
