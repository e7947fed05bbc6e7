"""The one database connection of a knowledge base: its SQLite file, or its schema in a shared
PostgreSQL database (kb.location). Store, BotRecords and Settings speak SQL through it and never
see which one it is.

The SQL is written once, in the dialect both understand (UPSERT with ON CONFLICT, RETURNING,
`?` placeholders); `Database` turns placeholders into psycopg's and table definitions into
PostgreSQL types. Each bot is a schema `kbchat_<bot>` in the database, with pgvector in `public`.

A PostgreSQL connection is made once per process and bot and shared by its threads; a connection
the server dropped is made again on the next statement (never inside a transaction: that one
fails, whole, with a plain message).

    >>> db = Database.open(kb_dir)                           # doctest: +SKIP
    >>> db.execute("SELECT value FROM meta WHERE key = ?", ("revision",)).fetchone()   # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from kb.errors import BadInput, ServiceUnavailable
from kb.location import database_of, shown

DB_FILE = "kbchat.db"
CONNECT_TIMEOUT_S = 10


class Result:
    """The rows of one statement, read in full while the connection was held."""

    def __init__(self, rows: list, rowcount: int):
        self.rows, self.rowcount = rows, rowcount

    def fetchone(self):
        return self.rows[0] if self.rows else None

    def fetchall(self) -> list:
        return self.rows

    def __iter__(self):
        return iter(self.rows)


class Database:
    """SQL over one connection, safe to share between threads."""

    kind = "sqlite"

    def __init__(self, path: Path):
        self.path = path
        self.lock = threading.RLock()
        self._depth = 0
        try:
            self._conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False, timeout=30)
            self._conn.execute("PRAGMA foreign_keys = ON")
            self._conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.DatabaseError as e:
            raise BadInput(f"{path} is not a readable kbchat knowledge base ({e}). Use another --kb folder.") from None

    # -- opening -------------------------------------------------------------------------------
    @staticmethod
    def open(kb_dir: str | os.PathLike) -> "Database":
        """The database of a knowledge base folder (its SQLite file, made if missing, or the
        PostgreSQL database its database.toml names)."""
        where = database_of(kb_dir)
        if where is None:
            return Database(Path(kb_dir) / DB_FILE)
        return PostgresDatabase.shared(*where)

    @staticmethod
    def exists(kb_dir: str | os.PathLike) -> bool:
        """Whether this knowledge base has been made (documents ingested at least once)."""
        where = database_of(kb_dir)
        if where is None:
            return (Path(kb_dir) / DB_FILE).exists()
        return PostgresDatabase.shared(*where).has_table("meta")

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (name,)).fetchone() is not None

    def add_column(self, table: str, column: str, ddl: str) -> None:
        """Add a column that a later version of a table has, to a table made before it (a no-op
        when it is there): `ddl` is its type and default, like "TEXT NOT NULL DEFAULT ''"."""
        with self.transaction():
            if not any(row[1] == column for row in self.execute(f"PRAGMA table_info({table})")):
                self.execute(f"ALTER TABLE {table} ADD COLUMN {column} {ddl}")

    @property
    def where(self) -> str:
        return str(self.path)

    def setup(self, ddl: str) -> None:
        """Run table definitions once per connection (they are CREATE ... IF NOT EXISTS)."""
        done = self.__dict__.setdefault("_set_up", set())
        if ddl not in done:
            self.script(ddl)
            done.add(ddl)

    # -- statements ----------------------------------------------------------------------------
    def execute(self, sql: str, args=()) -> Result:
        with self.lock:
            cur = self._conn.execute(sql, tuple(args))
            return Result(cur.fetchall(), cur.rowcount)

    def executemany(self, sql: str, rows) -> None:
        with self.lock:
            self._conn.executemany(sql, rows)

    def insert(self, sql: str, args=()) -> int:
        """An INSERT; returns the new row's id."""
        return int(self.execute(sql + " RETURNING id", args).fetchone()[0])

    def script(self, sql: str) -> None:
        """Table definitions (CREATE ... IF NOT EXISTS), separated by semicolons."""
        with self.lock:
            try:
                self._conn.executescript(sql)
            except sqlite3.DatabaseError as e:
                raise BadInput(f"{self.path} is not a readable kbchat knowledge base ({e}). Use another --kb folder.") from None

    @contextmanager
    def transaction(self):
        """All or nothing, and one writer at a time, rolled back on any exception, Ctrl-C
        included. Nested calls join the outer transaction."""
        with self.lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            with self._outermost():
                self._depth = 1
                try:
                    yield
                finally:
                    self._depth = 0

    @contextmanager
    def _outermost(self):
        """BEGIN IMMEDIATE takes the write lock. An interrupt can land inside COMMIT itself; then
        SQLite has either committed or not, and only an open transaction is rolled back."""
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield
            self._conn.execute("COMMIT")
        except BaseException:
            if self._conn.in_transaction:
                self._conn.execute("ROLLBACK")
            raise

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole file, taken with SQLite's backup API even while it is in use."""
        target = sqlite3.connect(path)
        try:
            with self.lock:
                self._conn.backup(target)
        finally:
            target.close()

    def close(self) -> None:
        self._conn.close()


class PostgresDatabase(Database):
    """One bot's schema in a PostgreSQL database with pgvector."""

    kind = "postgres"
    _shared: dict[tuple, "PostgresDatabase"] = {}
    _shared_lock = threading.Lock()

    def __init__(self, url: str, bot: str):
        self.url, self.bot = url, bot
        self.schema = f"kbchat_{bot}"
        self.lock = threading.RLock()
        self._depth = 0
        self._conn = None
        with self.lock:
            self._connect()

    @classmethod
    def shared(cls, url: str, bot: str) -> "PostgresDatabase":
        """This process's connection for the bot (made on first use; a forked child makes its own)."""
        key = (os.getpid(), url, bot)
        with cls._shared_lock:
            db = cls._shared.get(key)
            if db is None:
                db = cls._shared[key] = cls(url, bot)
            return db

    @classmethod
    def release(cls, url: str, bot: str) -> None:
        """Close this process's connection for the bot (tests, and tools that drop a bot)."""
        with cls._shared_lock:
            db = cls._shared.pop((os.getpid(), url, bot), None)
        if db is not None and db._conn is not None:
            db._conn.close()

    @property
    def where(self) -> str:
        return f"bot '{self.bot}' in {shown(self.url)}"

    def _connect(self) -> None:
        import psycopg

        try:
            conn = psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_S,
                                   application_name="kbchat")
        except psycopg.Error as e:
            raise ServiceUnavailable(self._unreachable(e)) from None
        try:
            with conn.transaction():
                # One process at a time sets a database up (CREATE ... IF NOT EXISTS races otherwise).
                conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key("kbchat setup"),))
                if conn.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'").fetchone() is None:
                    conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
                conn.execute(f"CREATE SCHEMA IF NOT EXISTS {self.schema}")
            conn.execute(f"SET search_path TO {self.schema}, public")
            conn.execute("SET hnsw.ef_search = 128")  # see rag/pgindex.py
            from pgvector.psycopg import register_vector

            register_vector(conn)
        except psycopg.errors.FeatureNotSupported | psycopg.errors.UndefinedFile as e:
            conn.close()
            raise BadInput(f"The database {shown(self.url)} has no pgvector extension, which kbchat needs for its "
                           f"search index ({_first_line(e)}). Install pgvector on the server "
                           "(https://github.com/pgvector/pgvector) and try again.") from None
        except psycopg.errors.InsufficientPrivilege as e:
            conn.close()
            raise BadInput(f"kbchat's database user may not set up {shown(self.url)} ({_first_line(e)}). Ask the database's "
                           "administrator to run: CREATE EXTENSION vector; and to let this user create schemas.") from None
        except psycopg.OperationalError as e:
            conn.close()
            raise ServiceUnavailable(self._unreachable(e)) from None
        self._conn = conn

    def _unreachable(self, e: Exception) -> str:
        return (f"kbchat cannot reach the database {shown(self.url)} ({_first_line(e)}). Check that PostgreSQL runs "
                "and that the address given with --kb or $KBCHAT_HOME is right.")

    def has_table(self, name: str) -> bool:
        return self.execute("SELECT to_regclass(?) IS NOT NULL", (f"{self.schema}.{name}",)).fetchone()[0]

    def add_column(self, table: str, column: str, ddl: str) -> None:
        self.execute(f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {_pg_types(ddl)}")

    def execute(self, sql: str, args=()) -> Result:
        return self._run(lambda conn: _read(conn.execute(_pg(sql), _values(args))))

    def executemany(self, sql: str, rows) -> None:
        rows = [_values(r) for r in rows]
        self._run(lambda conn: conn.cursor().executemany(_pg(sql), rows))

    def copy_rows(self, table: str, columns: tuple[str, ...], rows, types: tuple[str, ...]) -> None:
        """Many rows at once with COPY (binary), the fast way into PostgreSQL."""
        def copy(conn):
            with conn.cursor().copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN WITH (FORMAT BINARY)") as cp:
                cp.set_types(list(types))
                for row in rows:
                    cp.write_row(row)
        self._run(copy)

    def script(self, sql: str) -> None:
        with self.transaction():
            self.execute("SELECT pg_advisory_xact_lock(?)", (_lock_key(f"kbchat schema {self.schema}"),))
            for statement in sql.split(";"):
                if statement.strip():
                    self.execute(_pg_types(statement))

    @contextmanager
    def _outermost(self):
        """One writer at a time for this bot: an advisory lock held to COMMIT."""
        import psycopg

        self._ensure()
        try:
            with self._conn.transaction():
                self._conn.execute("SELECT pg_advisory_xact_lock(%s)", (_lock_key(f"kbchat write {self.schema}"),))
                yield
        except psycopg.OperationalError as e:
            raise ServiceUnavailable(self._unreachable(e) + " Nothing was changed.") from None

    @contextmanager
    def alone(self, work: str):
        """A connection of its own for long work (building a search index) that one process at a
        time does: the session lock `work` is held until the connection closes. Another process
        waits here, without holding up its shared connection, and then finds the work done."""
        db = PostgresDatabase(self.url, self.bot)
        try:
            db.execute("SELECT pg_advisory_lock(?)", (_lock_key(f"kbchat {work} {self.schema}"),))
            yield db
        finally:
            db._conn.close()  # the session ends, and its lock with it

    def _ensure(self) -> None:
        if self._conn is None or self._conn.closed or self._conn.broken:
            self._connect()

    def _run(self, work):
        import psycopg

        with self.lock:
            for attempt in (1, 2):
                if not self._depth:
                    self._ensure()
                try:
                    return work(self._conn)
                except psycopg.OperationalError as e:
                    # A dropped connection is made again once, but only outside a transaction:
                    # inside one, the whole transaction fails and the caller says so.
                    if self._depth or attempt == 2 or not self._conn.broken:
                        raise ServiceUnavailable(self._unreachable(e)) from None

    def backup_to(self, path: Path) -> None:
        raise NotImplementedError("a PostgreSQL knowledge base is copied row by row (Store.copy_to)")

    def close(self) -> None:
        """Shared by the process's stores: it stays open (PostgresDatabase.release closes it)."""


def drop_bot(url: str, bot: str) -> None:
    """Delete one bot's schema and everything in it (tests; an agency removing a business)."""
    db = PostgresDatabase.shared(url, bot)
    db.execute(f"DROP SCHEMA IF EXISTS {db.schema} CASCADE")
    PostgresDatabase.release(url, bot)


def _lock_key(name: str) -> int:
    """A stable signed 64-bit key for pg_advisory_xact_lock."""
    return int.from_bytes(hashlib.blake2b(name.encode(), digest_size=8).digest(), "big", signed=True)


def _read(cur) -> Result:
    return Result(cur.fetchall() if cur.description else [], cur.rowcount)


def _values(args) -> tuple:
    # SQLite stores booleans as 0/1 in INTEGER columns; PostgreSQL wants the same numbers.
    return tuple(int(a) if isinstance(a, bool) else a for a in args)


def _pg(sql: str) -> str:
    return sql.replace("%", "%%").replace("?", "%s")


def _pg_types(ddl: str) -> str:
    return (ddl.replace("INTEGER PRIMARY KEY AUTOINCREMENT", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY")
               .replace(" REAL", " DOUBLE PRECISION"))


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0][:300]
