"""The serving process's interpreter settings: what the collector watches, and how soon a
background thread hands the GIL back to the request loop.

Measured with wrk on the fraud_detection model (one worker, logging on), the p99 was not the
model: full collections walked the ~170k objects of the loaded modules and models (65-100
ms, a few times a minute), and a request that arrived while the log writer or the reconciler
ran Python waited for the GIL up to the default 5 ms switch interval.
"""

from __future__ import annotations

import gc
import importlib.util
import sys

#: The most a request waits for the GIL a background thread holds in Python code (the
#: interpreter's default is 5 ms; C code that holds the GIL is cut into short steps instead).
SWITCH_INTERVAL_S = 0.0005


def settle_heap(first: bool) -> None:
    """Take what is alive now (modules, models) out of the collector's sight: frozen objects
    are never walked again, while what requests create is still collected. The first time,
    garbage is collected first (no request is served yet); after a later model load it only
    freezes (a full collection then would stall the requests being served)."""
    if first:
        gc.collect()
    gc.freeze()


def quick_switches() -> None:
    """A background thread running Python gives the GIL back within SWITCH_INTERVAL_S."""
    sys.setswitchinterval(SWITCH_INTERVAL_S)


def have(module: str, fallback: str) -> str:
    """`module` when it is installed, else `fallback` (uvicorn's loop and http options)."""
    return module if importlib.util.find_spec(module) else fallback
