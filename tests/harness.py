"""What the tests and benchmarks share: a real gunicorn on a loopback port, throwaway
MariaDB/MySQL databases, and a TCP proxy that can cut a connection to a real server."""

import http.client
import os
import selectors
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parent.parent


def new_key(url, name, rate_limit):
    """An API key in the database at ``url``, made through the service's own store:
    ``(raw key, id)``."""
    from app.api.auth import create_key
    from app.db import Store

    store = Store({"DATABASE_URL": url})
    try:
        return create_key(store, name, rate_limit)
    finally:
        store.dispose()


def free_port():
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Benchmarks serve without worker recycling (off by default; explicit, so a WORKER_MAX_REQUESTS
# in the environment cannot leak in): a recycled worker closes its keep-alive connections,
# which the load generator counts as socket errors.
NO_RECYCLING = {"WORKER_MAX_REQUESTS": "0"}


class Gunicorn:
    """``make run``'s server (gunicorn.conf.py) in a child process, on its own port.

    ``app_uri`` (``module:variable``) serves another WSGI app with the same settings; what the
    server writes to stderr (its JSON log) goes to ``log_path`` (default: a temporary file).
    """

    def __init__(self, env, port=None, app_uri=None, log_path=None):
        self.port = port or free_port()
        self.env = {**os.environ, "LOG_LEVEL": "WARNING", **env, "PORT": str(self.port)}
        self.app_uri = app_uri
        self.process = None
        self._own_log = log_path is None
        if log_path is None:
            handle, log_path = tempfile.mkstemp(prefix="gunicorn-", suffix=".log")
            os.close(handle)
        self.log_path = Path(log_path)

    @property
    def base(self):
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout=60):
        """Start it and wait until /health answers."""
        command = [sys.executable, "-m", "gunicorn", "--config", "gunicorn.conf.py"]
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                command + ([self.app_uri] if self.app_uri else []),  # overrides wsgi_app only
                cwd=ROOT,
                env=self.env,
                stdout=subprocess.DEVNULL,
                stderr=log,
                start_new_session=True,  # its own process group, so kill() reaches the workers
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited: {self.errors()}")
            if self._healthy():
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"gunicorn did not answer /health within {timeout} s")

    def _healthy(self):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1)
        try:
            conn.request("GET", "/health")
            return conn.getresponse().status == 200
        except OSError:
            return False
        finally:
            conn.close()

    def log_lines(self):
        """Every line the server has written to stderr so far."""
        return self.errors().splitlines()

    def errors(self):
        """What the server has written to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def kill(self):
        """SIGKILL the master and every worker at once: a crash, not a shutdown."""
        try:
            os.killpg(self.process.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.process.wait()

    def stop(self, timeout=30):
        """SIGTERM, and wait for the graceful exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.terminate()
        return self.process.wait(timeout=timeout)

    def cleanup(self):
        """Stop it if it runs and remove its log."""
        if self.process is not None and self.process.poll() is None:
            self.stop()
        if self._own_log:
            self.log_path.unlink(missing_ok=True)


def recreate_database(server_url, name):
    """Drop ``name`` if it exists and create it empty on the server at ``server_url``."""
    _admin(server_url, f"DROP DATABASE IF EXISTS {name}", f"CREATE DATABASE {name}")


def drop_database(server_url, name):
    """Drop ``name`` if it exists."""
    _admin(server_url, f"DROP DATABASE IF EXISTS {name}")


def list_databases(server_url, like):
    """Names of the server's databases matching a LIKE pattern."""
    engine = create_engine(server_url + "/")
    try:
        with engine.connect() as conn:
            return list(conn.execute(text("SHOW DATABASES LIKE :p"), {"p": like}).scalars())
    finally:
        engine.dispose()


def drop_abandoned_databases(server_url, prefix):
    """Drop the ``<prefix><pid>`` databases whose process is gone (a run killed before it
    could drop its own)."""
    for name in list_databases(server_url, prefix.replace("_", "\\_") + "%"):
        pid = name[len(prefix) :]
        if pid.isdigit() and not _pid_alive(int(pid)):
            drop_database(server_url, name)


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _admin(server_url, *statements):
    engine = create_engine(server_url + "/", isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        engine.dispose()


class TcpProxy:
    """Forwards a loopback port to a real server; ``cut()`` drops every connection and stops
    listening — the server becomes unreachable for real — and ``restore()`` listens again.
    ``hang()`` keeps every connection open but forwards nothing either way (a server that
    accepts and never answers) until ``cut()``."""

    def __init__(self, target_host, target_port):
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener = None
        self._sockets = set()
        self._lock = threading.Lock()
        self._hung = threading.Event()

    def hang(self):
        """Stop forwarding (connections stay open, new ones are accepted and ignored)."""
        self._hung.set()
        return self

    def restore(self):
        """Start (or start again) accepting connections on ``port``."""
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def cut(self):
        """Stop listening and reset every forwarded connection (and end a hang)."""
        self._hung.clear()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # close() alone leaves accept() waiting
        except OSError:
            pass
        self._listener.close()
        with self._lock:
            for sock in self._sockets:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()
            self._sockets.clear()

    def _accept(self, listener):
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            if self._hung.is_set():
                with self._lock:
                    self._sockets.add(client)  # accepted, never answered
                continue
            server = socket.create_connection(self.target)
            with self._lock:
                self._sockets.update((client, server))
            threading.Thread(target=self._pump, args=(client, server), daemon=True).start()

    def _pump(self, client, server):
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, server)
        selector.register(server, selectors.EVENT_READ, client)
        try:
            while True:
                for key, _ in selector.select():
                    while self._hung.is_set():
                        time.sleep(0.05)
                    data = key.fileobj.recv(65536)
                    if not data:
                        return
                    key.data.sendall(data)
        except (OSError, ValueError):
            return
        finally:
            selector.close()


class RedisServer:
    """A private redis-server on a free loopback port, persisting every write to its own
    directory (appendonly yes, appendfsync always): a Redis that can be killed and restarted
    without losing what it acknowledged, as queue mode requires."""

    def __init__(self, directory, port=None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process = None

    @property
    def url(self):
        """redis://127.0.0.1:<port>/0"""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout=20):
        """Start it (replaying its append-only file) and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--maxmemory-policy",
                "noeviction",
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(64).startswith(b"+PONG"):
                        return self
            except OSError:
                time.sleep(0.05)
        raise RuntimeError(f"redis-server did not answer on port {self.port}")

    def kill(self):
        """SIGKILL: no shutdown save, only what the append-only file already holds survives."""
        self.process.kill()
        self.process.wait()

    def stop(self):
        """Stop it if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)


class Nginx:
    """A private nginx (Debian's /usr/sbin/nginx) in the foreground, serving a site file (an
    http {} context, as in sites-enabled/) on a loopback port, with every path nginx writes —
    pid, logs, temporary bodies — in ``directory``: it needs no root-owned path."""

    BINARY = "/usr/sbin/nginx"

    def __init__(self, directory, port=None):
        self.directory = Path(directory)
        self.port = port or free_port()
        self.process = None

    @property
    def base(self):
        """The server's base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def error_log(self):
        """The path of nginx's error log."""
        return self.directory / "error.log"

    def configure(self, site):
        """Write ``site`` and a main configuration around it, and check them with ``nginx -t``;
        ``start`` or ``reload`` applies them."""
        self.directory.mkdir(parents=True, exist_ok=True)
        # nginx's workers drop root privileges: they must reach the temporary paths.
        self.directory.chmod(0o755)
        (self.directory / "site.conf").write_text(site)
        temp_paths = "\n".join(
            f"    {kind}_temp_path {self.directory / kind};"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        (self.directory / "nginx.conf").write_text(
            f"worker_processes 2;\n"
            f"pid {self.directory / 'nginx.pid'};\n"
            f"error_log {self.error_log} notice;\n"
            f"events {{ worker_connections 1024; }}\n"
            f"http {{\n{temp_paths}\n"
            f"    include {self.directory / 'site.conf'};\n}}\n"
        )
        checked = subprocess.run(self._command("-t"), capture_output=True, text=True)
        if checked.returncode != 0:
            raise RuntimeError(f"nginx rejects its configuration: {checked.stderr}")
        return self

    def _command(self, *args):
        """nginx with this directory as its prefix, its error log and configuration."""
        return [
            self.BINARY,
            *("-e", str(self.error_log), "-p", str(self.directory)),
            *("-c", str(self.directory / "nginx.conf"), *args),
        ]

    def start(self, timeout=20):
        """Start nginx in the foreground; wait until its workers run and its port accepts."""
        self.process = subprocess.Popen(
            self._command("-g", "daemon off;"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"nginx exited: {self.error_log.read_text()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                if self.workers():
                    return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"nginx did not serve on port {self.port} within {timeout} s")

    def reload(self, timeout=30):
        """Apply the configuration written last (SIGHUP) and wait until every worker that ran
        the old one has finished its requests and exited."""
        old = self.workers()
        os.kill(self.process.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            current = self.workers()
            if current and not current & old:
                return self
            time.sleep(0.05)
        raise RuntimeError(f"nginx's old workers still run after {timeout} s")

    def workers(self):
        """The pids of the master's children (its workers)."""
        children = set()
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except (OSError, IndexError):
                continue  # gone meanwhile
            if int(fields[1]) == self.process.pid:
                children.add(int(stat.parent.name))
        return children

    def stop(self):
        """Stop it (SIGQUIT: a graceful shutdown) if it runs."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
