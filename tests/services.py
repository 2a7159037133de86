"""Private Redis and PostgreSQL servers for tests that stop and restart them.

Each server runs from the installed binaries on a free loopback port, with its files in a
temporary directory of its own, so a test may shut it down, kill it or restart it on the
same port and data directory without touching the shared servers of the machine. Every
wait is bounded, and leaving the context manager stops the server (by force if need be)
and removes its directory, whatever happened in between.

    with RedisServer.running() as redis:        # raises ServiceUnavailable without binaries
        redis.stop("shutdown" | "term" | "kill"); redis.start()
        redis.pause(); redis.resume()           # SIGSTOP/SIGCONT: up but not answering
    with PostgresServer.running() as postgres:
        url = postgres.create_database("flattr")
        postgres.stop("fast" | "immediate"); postgres.start()
        postgres.stop_smart_no_wait()           # refuses new connections (57P03)
        postgres.pause(); postgres.resume()

A redis-server also dies with the process that started it (PR_SET_PDEATHSIG), so a test run
killed from outside leaves none behind; see PostgresServer for PostgreSQL.
"""

import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

START_TIMEOUT = 30.0
PR_SET_PDEATHSIG = 1
STOP_TIMEOUT = 30.0
POSTGRES_BIN_DIRS = ("/usr/lib/postgresql/15/bin", "/usr/lib/postgresql/16/bin",
                     "/usr/lib/postgresql/17/bin", "/usr/lib/postgresql/14/bin")


class ServiceUnavailable(RuntimeError):
    """The server could not be started here (binaries missing, refused to run, …)."""


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def wait_until(predicate, timeout: float, what: str, interval: float = 0.05) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout:.0f} s")
        time.sleep(interval)


def _tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _signal_all(pids: list[int], signum: int) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signum)


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the process that started it dies, so that a
    test run killed from outside leaves no server behind (Linux; elsewhere a no-op). The
    signal comes when the starting *thread* ends: start servers from the main thread."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class RedisServer:
    """A redis-server without persistence: a restart starts empty, on the same port."""

    def __init__(self, binary: str | None = None) -> None:
        binary = binary or os.environ.get("FLATTR_TEST_REDIS_SERVER") or "redis-server"
        found = shutil.which(binary)
        if found is None:
            raise ServiceUnavailable(f"no {binary} found: install Redis (redis-server) or set "
                                     "FLATTR_TEST_REDIS_SERVER to its path")
        self.binary = found
        self.directory = Path(tempfile.mkdtemp(prefix="flattr-redis-"))
        self.port = free_port()
        self.process: subprocess.Popen | None = None
        self.paused = False

    @classmethod
    @contextlib.contextmanager
    def running(cls, binary: str | None = None) -> Iterator["RedisServer"]:
        server = cls(binary)
        try:
            server.start()
            yield server
        finally:
            server.close()

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log(self) -> Path:
        return self.directory / "redis.log"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=2,
                           socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))

    @property
    def is_running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.is_running:
            return
        command = [
            self.binary, "--port", str(self.port), "--bind", "127.0.0.1",
            "--dir", str(self.directory), "--logfile", str(self.log),
            "--save", "", "--appendonly", "no", "--daemonize", "no",
            "--protected-mode", "no",
        ]
        wait_until(lambda: not port_open(self.port), timeout, f"port {self.port} to be free")
        with open(self.directory / "redis.out", "ab") as output:
            self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=output,
                                            stderr=subprocess.STDOUT, start_new_session=True,
                                            preexec_fn=_die_with_parent)

        def answers() -> bool:
            if self.process.poll() is not None:
                raise ServiceUnavailable(
                    f"redis-server exited with {self.process.returncode}: "
                    f"{_tail(self.directory / 'redis.out')}\n{_tail(self.log)}")
            try:
                with self.client() as client:
                    return bool(client.ping())
            except redis.RedisError:
                return False

        try:
            wait_until(answers, timeout, f"redis-server on port {self.port}")
        except TimeoutError as error:
            self._kill()
            raise ServiceUnavailable(f"{error}\n{_tail(self.log)}") from error

    def stop(self, how: str = "shutdown", timeout: float = STOP_TIMEOUT) -> None:
        """Stop it: `shutdown` (SHUTDOWN NOSAVE), `term` (SIGTERM) or `kill` (SIGKILL)."""
        if not self.is_running:
            return
        self.resume()
        if how == "shutdown":
            with contextlib.suppress(redis.RedisError), self.client() as client:
                client.shutdown(nosave=True)
        elif how == "term":
            self.process.terminate()
        elif how == "kill":
            self.process.kill()
        else:
            raise ValueError(f"unknown way to stop Redis: {how!r}")
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        wait_until(lambda: not port_open(self.port), timeout, f"port {self.port} to close")

    def pause(self) -> None:
        """Freeze it (SIGSTOP): connections stay open and nothing answers, as in a partition."""
        if self.is_running:
            self.process.send_signal(signal.SIGSTOP)
            self.paused = True

    def resume(self) -> None:
        if self.paused and self.is_running:
            self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def _kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)

    def close(self) -> None:
        try:
            self.resume()
            self._kill()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)


class PostgresServer:
    """A PostgreSQL cluster of its own, run by pg_ctl (as the postgres user when we are root).

    Connections are trusted from loopback; the superuser is `postgres`. fsync is off (a test
    kills the server, not the machine) while synchronous_commit stays on, so a commit that
    was acknowledged survives a crash of the server as it would in production. pg_ctl
    detaches the server: if the test process is killed from outside (SIGKILL, a `timeout`),
    the context manager cannot run and the postmaster of <tmp>/flattr-postgres-*/data is left
    running; stop it with pg_ctl stop -D that directory.
    """

    SUPERUSER = "postgres"

    def __init__(self, bin_dir: str | None = None) -> None:
        self.bin_dir = Path(bin_dir or self._find_bin_dir())
        self.run_as = self._run_as()
        self.directory = Path(tempfile.mkdtemp(prefix="flattr-postgres-"))
        self.data = self.directory / "data"
        self.sockets = self.directory / "sockets"
        self.port = free_port()
        self.initialised = False
        self.paused: list[int] = []
        try:
            self.sockets.mkdir()
            if self.run_as is not None:
                for path in (self.directory, self.sockets):
                    os.chown(path, self.run_as.pw_uid, self.run_as.pw_gid)
        except OSError:
            shutil.rmtree(self.directory, ignore_errors=True)
            raise

    @staticmethod
    def _find_bin_dir() -> str:
        explicit = os.environ.get("FLATTR_TEST_POSTGRES_BIN")
        if explicit:
            candidates = [explicit]
        else:
            on_path = shutil.which("pg_ctl")
            candidates = [str(Path(on_path).parent)] if on_path else []
            candidates.extend(POSTGRES_BIN_DIRS)
        for candidate in candidates:
            if all((Path(candidate) / tool).is_file() for tool in ("initdb", "pg_ctl")):
                return candidate
        raise ServiceUnavailable(
            f"no PostgreSQL binaries (initdb, pg_ctl) in {', '.join(candidates)}: install "
            "PostgreSQL or set FLATTR_TEST_POSTGRES_BIN to their directory")

    @staticmethod
    def _run_as() -> pwd.struct_passwd | None:
        if os.geteuid() != 0:
            return None
        try:
            return pwd.getpwnam("postgres")
        except KeyError:
            raise ServiceUnavailable(
                "running as root and there is no `postgres` user to run initdb as") from None

    @classmethod
    @contextlib.contextmanager
    def running(cls, bin_dir: str | None = None) -> Iterator["PostgresServer"]:
        server = cls(bin_dir)
        try:
            server.init()
            server.start()
            yield server
        finally:
            server.close()

    @property
    def log(self) -> Path:
        return self.data / "server.log"

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{self.SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def _run(self, tool: str, *args: str, timeout: float) -> subprocess.CompletedProcess:
        command = [str(self.bin_dir / tool), *args]
        if self.run_as is not None:
            command = ["runuser", "-u", self.run_as.pw_name, "--", *command]
        try:
            return subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                  stdin=subprocess.DEVNULL, cwd=self.directory, check=False)
        except FileNotFoundError as error:
            raise ServiceUnavailable(f"cannot run {command[0]}: {error}") from error

    def init(self) -> None:
        done = self._run("initdb", "-D", str(self.data), "-U", self.SUPERUSER, "-A", "trust",
                         "-E", "UTF8", "--no-locale", "--no-sync", "--no-instructions",
                         timeout=120)
        if done.returncode != 0:
            raise ServiceUnavailable(f"initdb failed ({done.returncode}): "
                                     f"{done.stderr.strip() or done.stdout.strip()}")
        self.initialised = True

    def start(self, timeout: float = START_TIMEOUT) -> None:
        if self.is_running:
            return
        wait_until(lambda: not port_open(self.port), timeout, f"port {self.port} to be free")
        options = (f"-p {self.port} -c listen_addresses=127.0.0.1 "
                   f"-c unix_socket_directories={self.sockets} -c fsync=off "
                   "-c full_page_writes=off -c max_connections=100")
        done = self._run("pg_ctl", "start", "-D", str(self.data), "-l", str(self.log),
                         "-o", options, "-w", "-t", str(int(timeout)), timeout=timeout + 10)
        if done.returncode != 0 or not self.is_running:
            self._kill()
            raise ServiceUnavailable(f"pg_ctl start failed ({done.returncode}): "
                                     f"{done.stderr.strip()}\n{_tail(self.log)}")
        wait_until(self._answers, timeout, f"PostgreSQL on port {self.port}")

    def _answers(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return True
        except psycopg.Error:
            return False

    def stop(self, mode: str = "fast", timeout: float = STOP_TIMEOUT) -> None:
        """pg_ctl stop -m smart|fast|immediate; the postmaster is killed if that hangs."""
        self.resume()
        if not self.is_running:
            return
        done = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", mode, "-w",
                         "-t", str(int(timeout)), timeout=timeout + 10)
        if done.returncode != 0 and self.is_running:
            self._kill()
        wait_until(lambda: not port_open(self.port), timeout, f"port {self.port} to close")

    def stop_smart_no_wait(self, timeout: float = STOP_TIMEOUT) -> None:
        """Begin a smart shutdown: sessions go on, new connections are refused (57P03)."""
        done = self._run("pg_ctl", "stop", "-D", str(self.data), "-m", "smart", "-W",
                         timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"pg_ctl stop -m smart failed: {done.stderr.strip()}")
        wait_until(self._refuses_connections, timeout, "PostgreSQL to refuse connections")

    def _refuses_connections(self) -> bool:
        try:
            with psycopg.connect(self.url(), connect_timeout=2):
                return False
        except psycopg.OperationalError as error:  # libpq gives no SQLSTATE here: read it
            return "shutting down" in str(error) or not port_open(self.port)

    def wait_stopped(self, timeout: float = STOP_TIMEOUT) -> None:
        wait_until(lambda: not self.is_running and not port_open(self.port), timeout,
                   "PostgreSQL to stop")

    def pause(self) -> None:
        """Freeze the postmaster and its backends (SIGSTOP): connections are accepted by the
        kernel and queries sent, but nothing answers, as when the host or network stalls."""
        pid = self.postmaster_pid
        if pid is None or not _pid_alive(pid):
            return
        self.paused = [pid, *_children(pid)]
        _signal_all(self.paused, signal.SIGSTOP)
        self.paused.extend(child for child in _children(pid) if child not in self.paused)
        _signal_all(self.paused, signal.SIGSTOP)

    def resume(self) -> None:
        paused, self.paused = self.paused, []
        _signal_all(paused, signal.SIGCONT)

    def create_database(self, name: str) -> str:
        with psycopg.connect(self.url(), autocommit=True, connect_timeout=5) as admin:
            admin.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    @property
    def postmaster_pid(self) -> int | None:
        try:
            return int((self.data / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    @property
    def is_running(self) -> bool:
        pid = self.postmaster_pid
        return pid is not None and _pid_alive(pid)

    def _kill(self) -> None:
        pid = self.postmaster_pid
        if pid is None or not _pid_alive(pid):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGQUIT)  # immediate shutdown: the postmaster ends its children
        with contextlib.suppress(TimeoutError):
            wait_until(lambda: not _pid_alive(pid), 10, "postmaster to quit")
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)

    def close(self) -> None:
        try:
            self.resume()
            if self.initialised and self.is_running:
                try:
                    self.stop("immediate", timeout=15)
                except Exception:
                    self._kill()
        finally:
            shutil.rmtree(self.directory, ignore_errors=True)
