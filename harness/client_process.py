"""A JACK MIDI test client in a process of its own (``harness.jack_clients`` starts it).

    python harness/client_process.py SERVER CLIENT_NAME [--in NAME ...] [--out NAME]

Its process callback appends ``(frame, input index, bytes)`` for every event on its inputs to
a list and writes the output's queued events that fall in the cycle at their offsets. It runs
apart from the test so that its Python callback never waits for the GIL of a busy test process
(in pytest's process it missed cycles under load, and the events in them) and so that libjack,
which can crash a process whose server went away, never runs inside pytest.

Protocol, one line each. Out (stdout): ``READY rate period_frames`` once active; ``E frame
index hexbytes`` per event heard; ``SYNC`` after every ``sync`` read (every event heard before
it has been written); ``NOW frame`` (JACK's current frame) after ``now``; ``PENDING n`` after
``pending``; ``PEERS name<TAB>name...`` (the ports the output is connected to) after ``peers``;
``CONNECTED`` after ``connect DESTINATION``; ``GONE`` when the server went away. In (stdin):
also ``at FRAME HEXBYTES``, an event for the output (frame 0: as soon as possible), and
``quit`` (or the end of stdin), which ends it.
"""

from __future__ import annotations

import heapq
import itertools
import sys
import threading
import time


def main(argv: list[str]) -> int:
    import jack

    server, name = argv[0], argv[1]
    inputs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--in"]
    outputs = [argv[i + 1] for i, arg in enumerate(argv) if arg == "--out"]
    client = jack.Client(name, no_start_server=True, servername=server)
    in_ports = [client.midi_inports.register(short) for short in inputs]
    out_port = client.midi_outports.register(outputs[0]) if outputs else None
    captured: list[tuple[int, int, bytes]] = []
    outgoing: list[tuple[int, int, bytes]] = []  # heap: frame, arrival order, bytes
    order = itertools.count()
    lock = threading.Lock()
    gone = threading.Event()
    out_lock = threading.Lock()

    def process(frames: int) -> None:
        base = client.last_frame_time
        got = [(base + offset, index, bytes(data))
               for index, port in enumerate(in_ports)
               for offset, data in port.incoming_midi_events()]
        with lock:
            captured.extend(got)
            if out_port is not None:
                out_port.clear_buffer()
                while outgoing and outgoing[0][0] < base + frames:
                    frame, _, data = heapq.heappop(outgoing)
                    out_port.write_midi_event(max(0, frame - base), data)

    def shutdown(_status: object, _reason: str) -> None:
        gone.set()

    def say(text: str) -> None:
        with out_lock:
            sys.stdout.write(text + "\n")
            sys.stdout.flush()

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
    say(f"READY {client.samplerate} {client.blocksize}")

    def writer() -> None:
        while not gone.is_set():
            time.sleep(0.01)
            flush()
        say("GONE")

    threading.Thread(target=writer, daemon=True).start()
    for line in sys.stdin:
        command, _, argument = line.strip().partition(" ")
        if command == "at" and out_port is not None:
            frame, data = argument.split()
            with lock:
                heapq.heappush(outgoing, (int(frame), next(order), bytes.fromhex(data)))
        elif command == "now":
            say(f"NOW {client.frame_time}")
        elif command == "pending":
            with lock:
                count = len(outgoing)
            say(f"PENDING {count}")
        elif command == "peers":
            peers = [] if out_port is None else client.get_all_connections(out_port)
            say("PEERS " + "\t".join(p.name for p in peers))
        elif command == "connect" and out_port is not None:
            try:
                client.connect(out_port, argument)
            except jack.JackError as err:
                say(f"CONNECTED no {err}")
            else:
                say("CONNECTED yes")
        elif command == "sync":
            flush()
            say("SYNC")
        elif command == "quit":
            break
    flush()
    if not gone.is_set():  # libjack can crash closing a client of a server that went away
        client.deactivate()
        client.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
