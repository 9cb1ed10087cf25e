"""Issue 14, finding 1: `pingan up` restarts an API that is alive but no longer answers /healthz (HealthWatch, the
pure decision; tests/e2e/test_up_health.py stops a real API and watches it come back)."""

from pingan.supervisor import HealthWatch


def test_restart_after_failures_in_a_row_once_it_has_answered() -> None:
    watch = HealthWatch(failures=3, grace_s=60)
    watch.started(0.0)
    assert watch.record(True, 1.0) is False
    assert [watch.record(False, t) for t in (2.0, 4.0)] == [False, False]
    assert watch.record(True, 6.0) is False  # one answer starts the count again
    assert [watch.record(False, t) for t in (8.0, 10.0, 12.0)] == [False, False, True]


def test_a_slow_start_is_not_a_hang_until_the_grace_is_over() -> None:
    watch = HealthWatch(failures=2, grace_s=30)
    watch.started(100.0)
    assert [watch.record(False, t) for t in (102.0, 110.0, 128.0)] == [False, False, False]
    assert [watch.record(False, t) for t in (131.0, 133.0)] == [False, True]
    watch.started(200.0)  # restarted: a new grace, nothing counted
    assert watch.record(False, 202.0) is False and watch.failed_in_row == 0
