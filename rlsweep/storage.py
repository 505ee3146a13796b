"""Open Optuna storages and rlsweep's own tables beside them.

Optuna holds the study (trials = runs, user attributes, intermediate values). rlsweep adds three
small tables in the same database: the run queue (claims need a guarantee Optuna's API does not
give), the metrics of every evaluation, and the workers' heartbeats. With a journal-file storage the
tables live in a SQLite file beside the journal.
"""

from __future__ import annotations

import random
import re
import time
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from rlsweep.errors import StorageError

# user (no ':' '/' '@'), then the password: everything up to the last '@' before a host without '@'
_PASSWORD = re.compile(r"(://[^:/@]*:)(.*)(@[^@]*$)")
_JOURNAL_SUFFIXES = (".log", ".journal", ".jsonl")
T = TypeVar("T")


def default_url(study: str) -> str:
    return f"sqlite:///runs/{study}/study.db"


def find_local_study(study: str) -> str:
    """The default URL of a study, or the runs/*/study.db that holds it (a reseed child lives in its
    parent's file); the default URL when none does."""
    url = default_url(study)
    if Path(f"runs/{study}/study.db").exists():
        return url
    import sqlite3

    known: list[str] = []
    for path in sorted(Path("runs").glob("*/study.db")):
        try:
            con = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                names = [r[0] for r in con.execute("SELECT study_name FROM studies")]
            finally:
                con.close()
        except sqlite3.Error:
            continue
        if study in names:
            return f"sqlite:///{path}"
        known.extend(names)
    from rlsweep.errors import closest

    raise StorageError(
        f"no study '{study}' under runs/{closest(study, known)}; known here: {', '.join(sorted(known)) or 'none'} "
        "(or give --storage URL)"
    )


def redact(url: str) -> str:
    """The URL with its password replaced; every printed or stored URL goes through this. The
    password runs from the first ':' after the user to the last '@' before the host, so a password
    holding '@', ':' or '/' is masked whole."""
    return _PASSWORD.sub(lambda m: m[1] + "***" + m[3], url) if "://" in url else url


# A bare scheme: the driver SQLAlchemy picks for it (None: SQLAlchemy no longer accepts the scheme),
# and the URL prefix of the driver rlsweep's extras install instead.
_BARE_SCHEMES = {
    "postgresql": ("psycopg", "psycopg2", "postgresql+psycopg2"),
    "postgres": (None, "psycopg2", "postgresql+psycopg2"),
    "mysql": ("MySQLdb", "pymysql", "mysql+pymysql"),
    "mariadb": ("MySQLdb", "pymysql", "mysql+pymysql"),
}


def with_driver(url: str) -> str:
    """A bare `postgresql://` or `mysql://` URL names no driver, and SQLAlchemy then picks one the
    extras do not install (psycopg 3, mysqlclient): such a URL is mapped to the installed driver
    (`postgresql+psycopg2://`, `mysql+pymysql://`) unless SQLAlchemy's own choice is installed."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in _BARE_SCHEMES:
        return url
    import importlib.util

    default, installed, mapped = _BARE_SCHEMES[scheme]
    if default is not None and importlib.util.find_spec(default) is not None:
        return url  # SQLAlchemy's default driver is there: use it as SQLAlchemy would
    if importlib.util.find_spec(installed) is not None:
        return f"{mapped}://{rest}"
    return url  # neither: opening it names the extra to install


def is_journal(url: str) -> bool:
    return url.startswith("journal:") or ("://" not in url and url.endswith(_JOURNAL_SUFFIXES))


def _journal_path(url: str) -> Path:
    return Path(url.removeprefix("journal:///").removeprefix("journal://").removeprefix("journal:"))


def aux_url(url: str) -> str:
    """Where rlsweep's own tables live: the same database, or a SQLite file beside a journal.

    SQLite paths are made absolute, so the engine cache never hands a relative URL's engine from
    one working directory to code running in another."""
    if is_journal(url):
        path = _journal_path(url).resolve()
        return f"sqlite:///{path.with_name(path.name + '.rlsweep.db')}"
    url = with_driver(url)
    sqlite_path = _sqlite_path(url)
    return f"sqlite:///{sqlite_path.resolve()}" if sqlite_path is not None else url


def _sqlite_path(url: str) -> Path | None:
    if url.startswith("sqlite:///") and ":memory:" not in url:
        return Path(url.removeprefix("sqlite:///"))
    return None


def _engine_kwargs(url: str) -> dict[str, Any]:
    if url.startswith("sqlite"):
        # A long busy timeout: many workers write to one file; they should wait, not fail.
        return {"connect_args": {"timeout": 120}}
    # One connection kept per process (the worker's main thread); another thread that needs one at
    # the same moment (the heartbeat, a command run's metrics) opens one for that moment.
    return {"pool_pre_ping": True, "pool_size": 1, "max_overflow": 4}


# How long a process waits for a database server it has reached before to accept connections again (a
# restart, a failover) before its query fails; $RLSWEEP_STORAGE_WAIT overrides it (0: no wait).
STORAGE_WAIT_S = 120.0


_OUTAGE = [0.0]  # when this process last lost a connection to its server, or got one back after an outage
_GAVE_UP: list[tuple[str, float, str] | None] = [None]  # (storage, seconds waited, why) since the last connection opened


def outlasted_wait(exc: BaseException) -> str | None:
    """What to tell the user when `exc` ended a command because its database server stayed away
    longer than this process waits for it (`wait_for_server` gave up): None for any other error."""
    import sys

    gave_up = _GAVE_UP[0]
    operational = getattr(sys.modules.get("sqlalchemy.exc"), "OperationalError", None)
    if gave_up is None or operational is None or not any(isinstance(e, operational) for e in _chain(exc)):
        return None
    where, waited, why = gave_up
    return (
        f"storage {where} unreachable for more than {waited:.0f} s ({why}); $RLSWEEP_STORAGE_WAIT sets how long to wait. "
        "Finished runs are kept in the study: once the server is back, run the same command again to continue "
        "(runs that were cut off are queued again)"
    )


def _chain(exc: BaseException | None) -> list[BaseException]:
    """`exc` and the errors it was raised from or during, each once."""
    out: list[BaseException] = []
    while exc is not None and all(exc is not e for e in out):
        out.append(exc)
        exc = exc.__cause__ or exc.__context__
    return out


def last_outage() -> float:
    """The wall time this process last saw its database server drop a connection or come back
    after refusing (0.0: never). The other workers could not beat while this one could not reach
    the server: their heartbeats are only as old as the outage, so a reaper counts them from here."""
    return _OUTAGE[0]


def again_if_dropped(work: Callable[[], T], tries: int = 3) -> T:
    """`work()`, done again when the server dropped the connection under it: the server rolled
    its transaction back (or, dropped during the commit, may have committed it), and the pool opens
    a new connection, waiting out an outage (`wait_for_server`). Only for work that is harmless
    to repeat."""
    for attempt in range(tries):
        try:
            return work()
        except Exception as exc:
            if not is_dropped(exc) or attempt == tries - 1:
                raise
    raise AssertionError("unreachable")


def cut_off(exc: BaseException) -> bool:
    """Did `exc` come from losing the database server, not from the work: the connection dropped
    under it (`is_dropped`), or the server stayed away longer than this process waits for it
    (`outlasted_wait`)? A worker then exits and its runs are queued again, never failed."""
    return is_dropped(exc) or outlasted_wait(exc) is not None


def is_dropped(exc: BaseException) -> bool:
    """Did the database server drop the connection under this error (a restart, a failover)? Also
    when it is the cause of another error (Optuna raises its StorageInternalError from it)."""
    import sys

    dbapi_error = getattr(sys.modules.get("sqlalchemy.exc"), "DBAPIError", None)  # no import: SQLAlchemy may not be loaded
    return dbapi_error is not None and any(isinstance(e, dbapi_error) and e.connection_invalidated for e in _chain(exc))


def storage_wait() -> float:
    import os

    try:
        return max(0.0, float(os.environ.get("RLSWEEP_STORAGE_WAIT", STORAGE_WAIT_S)))
    except ValueError:
        return STORAGE_WAIT_S


def wait_for_server(engine: Any) -> None:
    """New connections of `engine` (a server's, not SQLite's) wait out an outage: once the engine
    has connected, a connection the server refuses or drops while opening is tried again, with a
    growing pause, for up to `storage_wait()` seconds, saying so once per outage (not once per
    thread). Nothing was sent
    on a connection that failed to open, so opening it again repeats nothing. An engine that never
    reached its server fails at once: a wrong host, port or password is the user's to fix, not
    something to wait for (an engine attached to after it connected counts as having reached it)."""
    import logging

    import sqlalchemy as sa

    log = logging.getLogger("rlsweep")
    pool = engine.pool
    # Optuna's engine has connected in its constructor when it made or checked the tables.
    state = {"reached": bool(getattr(pool, "checkedin", lambda: 0)() or getattr(pool, "checkedout", lambda: 0)()), "out": False}
    where = redact(str(engine.url.render_as_string(hide_password=True)))

    def connect(dialect: Any, _record: Any, cargs: Any, cparams: Any) -> Any:
        if not state["reached"]:
            connection = dialect.connect(*cargs, **cparams)
            state["reached"] = True
            return connection
        deadline, pause, waited = time.monotonic() + storage_wait(), 0.1, False
        while True:
            try:
                connection = dialect.connect(*cargs, **cparams)
            except dialect.loaded_dbapi.OperationalError as exc:
                why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                if time.monotonic() + pause > deadline:
                    _GAVE_UP[0] = (where, storage_wait(), redact(why))
                    raise
                if not state["out"]:
                    state["out"] = True
                    log.warning("storage %s unreachable (%s): waiting up to %.0f s for it to come back", where, why, storage_wait())
                waited = True
                time.sleep(pause)
                pause = min(pause * 2, 1.0)  # back within a second of the server
                continue
            _GAVE_UP[0] = None
            if waited:
                _OUTAGE[0] = time.time()
            if state["out"]:
                state["out"] = False
                log.warning("storage %s reachable again", where)
            return connection

    def dropped(context: Any) -> None:
        if context.is_disconnect:
            _OUTAGE[0] = time.time()

    sa.event.listen(engine, "do_connect", connect)
    sa.event.listen(engine, "handle_error", dropped)


def prepare_sqlite(url: str) -> None:
    """Create the folder and switch the file to WAL once (the mode is stored in the file)."""
    path = _sqlite_path(url)
    if path is None:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    import sqlite3

    con = sqlite3.connect(path, timeout=120)
    try:
        con.execute("PRAGMA journal_mode=WAL")
    finally:
        con.close()


def open_optuna_storage(url: str, *, create: bool) -> Any:
    """Optuna's storage for `url`. Only the creator makes tables; workers skip that step, so
    many workers starting at once on a new file never race on 'table already exists'."""
    import optuna

    url = with_driver(url)
    try:
        if is_journal(url):
            from optuna.storages.journal import JournalFileBackend

            path = _journal_path(url)
            path.parent.mkdir(parents=True, exist_ok=True)
            return optuna.storages.JournalStorage(JournalFileBackend(str(path)))
        if create:
            prepare_sqlite(url)
        elif (db := _sqlite_path(url)) is not None and not db.exists():
            raise StorageError(f"no study database at {db}; start the study with 'rlsweep run' first")
        return _rdb_storage(url, create)
    except StorageError:
        raise
    except ImportError as exc:
        extra = "postgres" if "postgres" in url else "mysql" if ("mysql" in url or "mariadb" in url) else "all"
        driver = f"the driver {exc.name}" if exc.name else "a database driver"
        raise StorageError(
            f"storage {redact(url)} needs {driver}: pip install 'rlsweep[{extra}]' "
            f"(installs {'psycopg2' if extra == 'postgres' else 'PyMySQL'}; a bare postgresql:// or mysql:// URL "
            "uses it when SQLAlchemy's default driver is missing)"
        ) from None
    except Exception as exc:  # driver errors carry the URL; never print it unredacted
        raise StorageError(f"cannot open storage {redact(url)}: {redact(root_cause(exc))}") from None


def root_cause(exc: BaseException) -> str:
    """The first line of the innermost error: Optuna wraps a refused connection in a generic
    'exception is raised during the commit'; the driver's own message says what to fix."""
    while exc.__cause__ is not None or (exc.__context__ is not None and not exc.__suppress_context__):
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    lines = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {lines[0]}" if lines else type(exc).__name__


def _rdb_storage(url: str, create: bool) -> Any:
    import optuna

    kwargs = _engine_kwargs(url)
    if not create:
        rdb = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_table_creation=True, skip_compatibility_check=True)
    else:
        try:
            rdb = optuna.storages.RDBStorage(url, engine_kwargs=kwargs)
        except Exception:
            # Several array tasks creating one new study at once: one wins the CREATE TABLE race, the
            # others find the tables made a moment later and simply open them.
            time.sleep(1.0 + random.random())
            rdb = optuna.storages.RDBStorage(url, engine_kwargs=kwargs, skip_table_creation=True)
    if url.startswith("sqlite"):
        import sqlalchemy as sa

        sa.event.listen(rdb.engine, "connect", _sqlite_pragmas)
        rdb.engine.dispose()  # connections opened before the listener reopen with it
        _OPTUNA_ENGINES.add(rdb.engine)
    else:
        wait_for_server(rdb.engine)
        # rlsweep's tables are in the same database: one pool of connections for both, so a
        # worker holds one connection to the server, not two (a server's max_connections, 100 by
        # default on PostgreSQL, is what limits how many workers it takes).
        _ENGINES.setdefault(aux_url(url), rdb.engine)
    return rdb


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # NORMAL is durable against a crashed or killed process under WAL; only a power cut could lose
    # the last commits. It makes each commit several times cheaper than FULL.
    dbapi_connection.execute("PRAGMA synchronous=NORMAL")


_ENGINES: dict[str, Any] = {}
# Optuna's own engines on SQLite files, while they live (dispose_engines closes them: a file's
# write-ahead log is folded back into it when its last connection closes).
_OPTUNA_ENGINES: weakref.WeakSet[Any] = weakref.WeakSet()


def aux_engine(url: str) -> Any:
    """A SQLAlchemy engine for rlsweep's tables (one per process and URL)."""
    target = aux_url(url)
    if target not in _ENGINES:
        import sqlalchemy as sa

        if target.startswith("sqlite"):
            prepare_sqlite(target)
        engine = sa.create_engine(target, **_engine_kwargs(target))
        if target.startswith("sqlite"):
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        else:
            wait_for_server(engine)

        _ENGINES[target] = engine
    return _ENGINES[target]


def forget_engines_after_fork() -> None:
    """In a forked child: drop the engines inherited from the parent without closing the parent's
    connections (SQLAlchemy's advice for fork); the next aux_engine call opens fresh ones."""
    for engine in _ENGINES.values():
        engine.dispose(close=False)
    _ENGINES.clear()


def dispose_engines() -> None:
    """Close every engine's pooled connections (a command that is about to exit)."""
    for engine in [*_ENGINES.values(), *_OPTUNA_ENGINES]:
        engine.dispose()
    _ENGINES.clear()


def tables() -> Any:
    """rlsweep's table definitions (built lazily: SQLAlchemy is not needed to import rlsweep)."""
    global _TABLES
    if _TABLES is None:
        import sqlalchemy as sa

        meta = sa.MetaData()
        runs = sa.Table(
            "rlsweep_runs",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(128), nullable=False),
            sa.Column("key", sa.String(191), nullable=False),  # grid:37, cfg:4/seed:2, …/retry:1
            sa.Column("state", sa.String(16), nullable=False),  # waiting running done failed lost interrupted
            sa.Column("priority", sa.Integer, nullable=False, default=1),
            sa.Column("params", sa.Text, nullable=True),  # JSON of Optuna-internal values; NULL = ask the sampler
            sa.Column("seed_number", sa.Integer, nullable=False, default=0),
            sa.Column("attrs", sa.Text, nullable=False, default="{}"),  # JSON: member, generation, parent …
            sa.Column("trial_number", sa.Integer, nullable=True),
            sa.Column("worker", sa.String(128), nullable=True),
            sa.Column("updated", sa.Double, nullable=False),
            sa.UniqueConstraint("study", "key", name="uq_rlsweep_runs_study_key"),
            sa.Index("ix_rlsweep_runs_claim", "study", "state", "priority", "id"),
        )
        metrics = sa.Table(
            "rlsweep_metrics",
            meta,
            sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
            sa.Column("study", sa.String(128), nullable=False),
            sa.Column("trial_id", sa.Integer, nullable=False),
            sa.Column("trial_number", sa.Integer, nullable=False),
            sa.Column("step", sa.BigInteger, nullable=False),
            sa.Column("name", sa.String(128), nullable=False),
            sa.Column("value", sa.Double, nullable=True),
            sa.Column("wall_time", sa.Double, nullable=False),
            sa.Index("ix_rlsweep_metrics_trial", "study", "trial_number"),
        )
        workers = sa.Table(
            "rlsweep_workers",
            meta,
            sa.Column("id", sa.String(128), primary_key=True),
            sa.Column("study", sa.String(128), nullable=False),
            sa.Column("host", sa.String(128), nullable=False),
            sa.Column("pid", sa.Integer, nullable=False),
            sa.Column("started", sa.Double, nullable=False),
            sa.Column("heartbeat", sa.Double, nullable=False),
            sa.Column("state", sa.String(16), nullable=False),  # alive stopped lost
        )
        _TABLES = (meta, runs, metrics, workers)
    return _TABLES


_TABLES: Any = None


def create_tables(url: str) -> None:
    meta = tables()[0]
    try:
        try:
            meta.create_all(aux_engine(url))
        except Exception:  # lost a CREATE TABLE race to another process: the tables exist now
            time.sleep(1.0 + random.random())
            meta.create_all(aux_engine(url))
        _widen_floats(aux_engine(url))
    except Exception as exc:
        raise StorageError(f"cannot create rlsweep tables in {redact(url)}: {redact(str(exc).splitlines()[0])}") from None


def _widen_floats(engine: Any) -> None:
    """Tables made before rlsweep declared its times and values DOUBLE hold them as MySQL's 4-byte
    FLOAT: a Unix time rounded to 128 s (heartbeats could not tell a live worker from a lost one)
    and metrics cut to 7 digits. Widen those columns in place (other databases' FLOAT is 8 bytes)."""
    import sqlalchemy as sa

    if engine.dialect.name != "mysql":
        return
    inspector = sa.inspect(engine)
    for table in tables()[0].sorted_tables:
        declared = {c.name: c for c in table.columns if isinstance(c.type, sa.Double)}
        narrow = [c["name"] for c in inspector.get_columns(table.name) if c["name"] in declared and type(c["type"]).__name__ == "FLOAT"]
        if narrow:
            with engine.begin() as con:
                for name in narrow:
                    null = "NULL" if declared[name].nullable else "NOT NULL"
                    con.execute(sa.text(f"ALTER TABLE {table.name} MODIFY `{name}` DOUBLE {null}"))
