"""The JACK server as the daemon sees it: its name, whether it runs, how to start one.

Nothing here loads libjack until :func:`jack_module` is called (the JACK-Client package, whose
libjack is the only one in the process: ``musegan_live.ports.jack_ports`` uses it).
"""

from __future__ import annotations

import os
from typing import Any

from musegan_live.errors import PortError

START_JACK = (
    "start a JACK server, e.g. `jackd -d dummy -r 48000 -p 64 &` (or `-d alsa` with a sound "
    "card), and make sure JACK_DEFAULT_SERVER names it if it is not 'default'"
)


def jack_server_name() -> str:
    """The JACK server clients connect to: ``$JACK_DEFAULT_SERVER`` or 'default'."""
    return os.environ.get("JACK_DEFAULT_SERVER") or "default"


def jack_server_running() -> bool:
    """Cheap look for a running JACK server (jackd2 and jackd1 socket paths), no libjack."""
    server, uid = jack_server_name(), os.getuid()
    candidates = (
        f"/dev/shm/jack_{server}_{uid}_0",  # jackd2
        f"/dev/shm/jack-{uid}/{server}/jack_0",  # jackd1
        f"/tmp/jack_{server}_{uid}_0",
    )
    return any(os.path.exists(path) for path in candidates)


def no_jack_server_message() -> str:
    return f"no JACK server {jack_server_name()!r} is running: {START_JACK}"


def jack_module() -> Any:
    """The JACK-Client package (``import jack``); PortError saying how to install it."""
    try:
        import jack
    except ImportError as err:  # pragma: no cover - a declared dependency
        raise PortError(
            "the JACK-Client package is not installed; install it with `pip install JACK-Client`"
        ) from err
    except OSError as err:  # JACK-Client is there, libjack is not
        raise PortError(
            f"libjack cannot be loaded ({err}); install JACK (`sudo apt-get install jackd2`)"
        ) from err
    return jack
