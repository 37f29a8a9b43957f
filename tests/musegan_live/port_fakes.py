"""In-memory MIDI ports for tests, through the same base-class paths as the real backends."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Sequence
from typing import Any

import mido

from musegan_live.ports.base import InputPort, OutputPort, ReceivedMidi


class FakeOutputPort(OutputPort):
    """Records what is sent: ``sent`` holds ``(time.monotonic(), mido.Message)`` pairs."""

    def __init__(self, name: str = "fake out") -> None:
        super().__init__(name)
        self.sent: list[tuple[float, mido.Message]] = []

    def _send(self, data: list[int]) -> None:
        self.sent.append((time.monotonic(), mido.Message.from_bytes(data)))

    @property
    def messages(self) -> list[mido.Message]:
        return [message for _, message in self.sent]


class FakeInputPort(InputPort):
    """An input fed by the test: ``inject`` goes through the same path as a backend callback."""

    def __init__(
        self, name: str = "fake in", message_queue: queue.SimpleQueue[Any] | None = None,
        *, now: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(name, message_queue)
        self._now = now

    def _enqueue(self, data: Sequence[int]) -> None:
        """Stamped on the injected clock (a JACK port stamps frame-clock seconds)."""
        self.queue.put(ReceivedMidi(self._now(), data, self.name))

    def inject(self, message: mido.Message | Sequence[int]) -> None:
        data = message.bytes() if isinstance(message, mido.Message) else list(message)
        self._enqueue(data)
