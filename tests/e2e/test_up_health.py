"""Issue 14, finding 1: `pingan up` restarts an API that is alive but answers nothing. A blocked event loop never
exits, so a supervisor that restarts only parts that exit left the API hung for minutes; SIGSTOP makes the same
kind of API here: the process is there, /healthz is not."""

import contextlib
import os
import signal
from pathlib import Path

import httpx

from tests.fixtures.stack import Stack, wait_for


def answers(stack: Stack) -> bool:
    try:
        return httpx.get(stack.url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_an_api_that_stops_answering_healthz_is_restarted(tmp_path: Path) -> None:
    stack = Stack(tmp_path, PINGAN_SUPERVISOR_HEALTH_INTERVAL_S="0.5", PINGAN_SUPERVISOR_HEALTH_TIMEOUT_S="1",
                  PINGAN_SUPERVISOR_HEALTH_FAILURES="3")
    stack.up()
    hung = None
    try:
        # Hung after it has served: once `pingan up` says ready, its probe has seen the API answer (before that, a
        # silent API is one still starting, which the start-up grace covers).
        assert stack.proc is not None
        wait_for(lambda: "pingan up: ready" in stack.proc.log_tail(50), 60, 0.1, "pingan up's ready line")
        api = (b"pingan.cli.main", b"api")
        hung = wait_for(lambda: stack.child_pid(*api), 10, 0.1, "the api process")
        os.kill(hung, signal.SIGSTOP)  # alive, and deaf
        assert not answers(stack)
        restarted = wait_for(lambda: (pid := stack.child_pid(*api)) and pid != hung and answers(stack) and pid, 60,
                             0.2, "a new api answering /healthz")
        assert restarted != hung
        assert stack.proc is not None
        log = stack.proc.log_tail(200)
        assert "api did not answer" in log and "3 times in a row" in log and "restart #1" in log, log
        # The old one is gone, not left stopped beside the new one.
        assert wait_for(lambda: not Path(f"/proc/{hung}").exists() or "Z" in _state(hung), 10, 0.2, "old api gone")
    finally:
        if hung is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(hung, signal.SIGKILL)
        stack.stop()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"
