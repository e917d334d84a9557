"""Start, watch and stop the servers under test: one uvicorn worker each, like production."""

from __future__ import annotations

import contextlib
import errno
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType

import httpx

ROOT = Path(__file__).resolve().parent.parent


class ServerError(RuntimeError):
    pass


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return False
            raise
    return True


def wait_port_free(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not port_is_free(port):
        if time.monotonic() > deadline:
            raise ServerError(f"port {port} is still in use after {timeout_s:.0f}s")
        time.sleep(0.2)


def peak_rss_kib(pid: int) -> int:
    """VmHWM, the process's peak resident set size, from /proc/<pid>/status."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise ServerError(f"no VmHWM in /proc/{pid}/status")


class Server:
    """``python -m uvicorn <app>`` in its own session; a context manager that always stops it."""

    def __init__(self, name: str, app: str, port: int, env: dict[str, str], log: Path) -> None:
        self.name = name
        self.app = app
        self.port = port
        self.env = env
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        if self.proc is None:
            raise ServerError(f"{self.name} is not running")
        return self.proc.pid

    def start(self, ready_timeout_s: float = 60.0) -> None:
        wait_port_free(self.port)
        cmd = [
            sys.executable,
            "-m",
            "uvicorn",
            self.app,
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--workers",
            "1",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--no-access-log",
        ]
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                cmd,
                cwd=ROOT,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # Ctrl-C reaches us, and we stop it in order
            )
        self._wait_ready(ready_timeout_s)

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise ServerError(
                    f"{self.name} exited with {self.proc.returncode}:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/healthz", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise ServerError(f"{self.name} did not answer /healthz in {timeout_s:.0f}s")

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, timeout_s: float = 60.0) -> None:
        """SIGTERM (uvicorn shuts down gracefully, the service seals its audit queue), then
        SIGKILL if it hangs; then wait for the port to be free again."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                print(f"{self.name} ignored SIGTERM for {timeout_s:.0f}s: killing it")
                proc.kill()
                proc.wait()
        wait_port_free(self.port)

    def __enter__(self) -> Server:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def server_env(extra: dict[str, str]) -> dict[str, str]:
    """The environment for a server: ours, minus PANELS_* we did not choose, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PANELS_")}
    if os.environ.get("BENCH_DB_CONCURRENCY"):
        env["PANELS_DB_CONCURRENCY"] = os.environ["BENCH_DB_CONCURRENCY"]
    env.update(extra)
    return env
