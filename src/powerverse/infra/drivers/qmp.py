"""A small synchronous client for QEMU's monitor protocol (QMP), over the ``qemu.qmp`` library.

``qemu.qmp`` is asyncio-only, while the drivers are called synchronously from the agent's worker
threads (where no event loop runs). :class:`QmpSession` runs every coroutine on one private
event loop in a daemon thread and waits for it with a timeout, so a QEMU that stops answering
costs the caller ``timeout`` seconds and a :class:`QmpError`, never a hung thread. Sessions are
short-lived (connect, a few commands, close): QEMU serves one QMP client per socket at a time,
and a session per operation leaves the socket free for an operator's own tools in between.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Coroutine, Mapping
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

from qemu.qmp import ExecuteError, QMPClient, QMPError

from powerverse.infra.exceptions import DriverError

__all__ = ["DEFAULT_TIMEOUT", "QmpError", "QmpSession", "qmp_execute"]

DEFAULT_TIMEOUT = 10.0
_T = TypeVar("_T")


class QmpError(DriverError):
    """A QMP exchange failed: QEMU refused the command (``error_class`` is QEMU's error class,
    e.g. ``DeviceNotFound``), or the socket could not be reached or did not answer
    (``error_class`` is None)."""

    def __init__(self, message: str, error_class: str | None = None) -> None:
        super().__init__(message)
        self.error_class = error_class


class _LoopThread:
    """One asyncio event loop in a daemon thread, shared by every session of the process."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loop: asyncio.AbstractEventLoop | None = None

    def loop(self) -> asyncio.AbstractEventLoop:
        with self._lock:
            if self._loop is None or self._loop.is_closed():
                loop = asyncio.new_event_loop()
                threading.Thread(target=loop.run_forever, name="qmp-loop", daemon=True).start()
                self._loop = loop
            return self._loop

    def run(self, coro: Coroutine[Any, Any, _T], timeout: float) -> _T:
        """Run ``coro`` on the loop; cancel it and raise TimeoutError after ``timeout`` s."""
        future = asyncio.run_coroutine_threadsafe(coro, self.loop())
        try:
            return future.result(timeout)
        except FutureTimeout:
            future.cancel()
            raise TimeoutError from None


_LOOP = _LoopThread()


class QmpSession:
    """A connection to one QEMU's QMP socket; use as a context manager.

    ``timeout`` bounds the connection and every command (``execute`` may override it).
    """

    def __init__(self, socket_path: Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.socket_path = socket_path
        self.timeout = timeout
        self._client: QMPClient | None = None

    def __enter__(self) -> QmpSession:
        self.connect()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def connect(self) -> None:
        """Open the socket and negotiate capabilities."""
        if self._client is not None:
            return

        async def connect() -> QMPClient:
            client = QMPClient(self.socket_path.parent.name or "qmp")
            await client.connect(str(self.socket_path))
            return client

        try:
            self._client = _LOOP.run(connect(), self.timeout)
        except TimeoutError:
            raise QmpError(
                f"QMP socket {self.socket_path} did not answer within {self.timeout:g} s"
            ) from None
        except (QMPError, OSError) as exc:
            raise QmpError(f"cannot reach QMP socket {self.socket_path}: {exc}") from None

    def execute(
        self,
        command: str,
        arguments: Mapping[str, object] | None = None,
        *,
        timeout: float | None = None,
    ) -> Any:
        """Run one QMP command and return its ``return`` value."""
        if self._client is None:
            raise QmpError(f"QMP session to {self.socket_path} is not connected")
        client = self._client
        wait = self.timeout if timeout is None else timeout
        try:
            return _LOOP.run(client.execute(command, arguments), wait)
        except ExecuteError as exc:
            raise QmpError(f"QMP {command}: {exc}", exc.error_class) from None
        except TimeoutError:
            self.close()  # the reply may still come: this session can no longer be trusted
            raise QmpError(f"QMP {command} got no answer within {wait:g} s") from None
        except (QMPError, OSError, EOFError) as exc:
            self.close()
            raise QmpError(
                f"QMP {command}: QEMU closed the connection or exited ({type(exc).__name__})"
            ) from None

    def close(self) -> None:
        """Disconnect (errors of an already broken connection are ignored)."""
        client, self._client = self._client, None
        if client is None:
            return

        async def disconnect() -> None:
            with contextlib.suppress(QMPError, OSError, EOFError):
                await client.disconnect()  # errors: QEMU already hung up (``quit``, or died)

        with contextlib.suppress(TimeoutError):
            _LOOP.run(disconnect(), self.timeout)


def qmp_execute(
    socket_path: Path,
    command: str,
    arguments: Mapping[str, object] | None = None,
    *,
    timeout: float = DEFAULT_TIMEOUT,
) -> Any:
    """Connect, run one command, disconnect."""
    with QmpSession(socket_path, timeout=timeout) as session:
        return session.execute(command, arguments)
