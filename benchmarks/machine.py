"""What every benchmark prints with its table: the machine it ran on, and percentiles.

The machines are shared and noisy, so the description includes the load average at the time.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from pathlib import Path

import numpy as np


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (Linux), else what platform knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description(extra: str = "") -> str:
    """One line: CPU, logical cores, memory, OS, Python, load average (and ``extra``)."""
    try:
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        memory = f", {pages / 2**30:.0f} GiB"
    except (ValueError, OSError):
        memory = ""
    text = (
        f"{cpu_name()}, {os.cpu_count()} logical cores{memory}, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    return f"{text}, {extra}" if extra else text


def p50_p99(values: Sequence[float]) -> tuple[float, float]:
    """Median and 99th percentile of ``values`` (NaN, NaN when empty)."""
    if len(values) == 0:
        return float("nan"), float("nan")
    return float(np.percentile(values, 50)), float(np.percentile(values, 99))
