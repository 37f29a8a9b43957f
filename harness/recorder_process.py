"""The JACK MIDI recorder's own process (``harness.jack_rig.JackMidiRecorder`` starts it).

    python harness/recorder_process.py SERVER CLIENT_NAME [INPUT ...]

A JACK client with one MIDI input per name whose process callback only appends
``(frame, input index, bytes)`` to a list. It runs in a process of its own so that its Python
callback never waits for the GIL of a busy test process (in pytest's process it missed cycles
under load: clock ticks and Starts vanished from recordings). Protocol on stdout, one line
each: ``READY rate period_frames`` once active; ``E frame index hexbytes`` per event; ``SYNC``
after every ``sync`` line read on stdin (all events captured before it have been written);
``NOW frame`` (JACK's current frame) after every ``now`` line.
``quit`` (or end of stdin) ends it; so does the server going away (``GONE``).
"""

from __future__ import annotations

import sys
import threading
import time


def main(argv: list[str]) -> int:
    import jack

    server, name, inputs = argv[0], argv[1], argv[2:]
    client = jack.Client(name, no_start_server=True, servername=server)
    ports = [client.midi_inports.register(short) for short in inputs]
    captured: list[tuple[int, int, bytes]] = []
    lock = threading.Lock()
    gone = threading.Event()
    out_lock = threading.Lock()

    def process(_frames: int) -> None:
        base = client.last_frame_time
        got = [(base + offset, index, bytes(data))
               for index, port in enumerate(ports)
               for offset, data in port.incoming_midi_events()]
        if got:
            with lock:
                captured.extend(got)

    def shutdown(_status: object, _reason: str) -> None:
        gone.set()

    def flush() -> None:
        with out_lock:  # taking and writing under one lock: two flushes never swap chunks
            with lock:
                events, captured[:] = list(captured), []
            for frame, index, data in events:
                sys.stdout.write(f"E {frame} {index} {data.hex()}\n")
            sys.stdout.flush()

    client.set_process_callback(process)
    client.set_shutdown_callback(shutdown)
    client.activate()
    sys.stdout.write(f"READY {client.samplerate} {client.blocksize}\n")
    sys.stdout.flush()

    def writer() -> None:
        while not gone.is_set():
            time.sleep(0.01)
            flush()
        with out_lock:
            sys.stdout.write("GONE\n")
            sys.stdout.flush()

    threading.Thread(target=writer, daemon=True).start()
    for line in sys.stdin:
        command = line.strip()
        if command == "now":
            with out_lock:
                sys.stdout.write(f"NOW {client.frame_time}\n")
                sys.stdout.flush()
        elif command == "sync":
            flush()
            with out_lock:
                sys.stdout.write("SYNC\n")
                sys.stdout.flush()
        elif command == "quit":
            break
    flush()
    if not gone.is_set():
        client.deactivate()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
