"""Helpers for child processes (the broker, and the supervisor's other children)."""

import ctypes
import sys
from collections.abc import Callable

_PR_SET_PDEATHSIG = 1
_SIGKILL = 9


def _load_prctl() -> Callable[..., int] | None:
    if not sys.platform.startswith("linux"):
        return None
    # CDLL(None): the symbols already loaded into this process, libc's among them (glibc or musl alike).
    return ctypes.CDLL(None, use_errno=True).prctl  # type: ignore[no-any-return]


# Resolved once in the parent: after fork only async-signal-safe work belongs in the child, and loading a
# library (dlopen) there could deadlock on a lock some other thread of the parent held at fork time.
_prctl = _load_prctl()


def die_with_parent() -> None:
    """`preexec_fn` that makes the kernel SIGKILL the child when its parent dies (Linux; a no-op elsewhere).

    Without it a SIGKILLed supervisor leaves its broker and workers running, holding ports. The signal is
    tied to the parent *thread* that forked the child, so spawn long-lived children from a long-lived
    thread (normally the main thread).
    """
    if _prctl is not None:
        _prctl(_PR_SET_PDEATHSIG, _SIGKILL, 0, 0, 0)
