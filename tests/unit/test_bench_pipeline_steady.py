"""bench/pipeline.py's steady-rate mode (issue 15): its sends follow an absolute schedule, its options, its figures
(intake→notified percentiles, the worker's CPU per incident, the achieved rate), and run_all.py running it and
report.py showing it. Only the bench's own logic, with a fake clock and no broker: the bench itself is run by hand
(bench/README.md), never by pytest."""

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture()
def bench() -> Iterator[dict[str, ModuleType]]:
    """The bench modules, imported as they import each other (`python bench/x.py` puts bench/ first on sys.path)."""
    sys.path.insert(0, str(BENCH))
    try:
        import pipeline
        import pipeline_steady
        import report
        import run_all

        yield {"pipeline": pipeline, "steady": pipeline_steady, "report": report, "run_all": run_all}
    finally:
        sys.path.remove(str(BENCH))


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.slept = 0.0

    def time(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.now += seconds
        self.slept += seconds


def test_sends_follow_an_absolute_schedule_not_sleep_after_send(bench: dict[str, ModuleType]) -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    def send(i: int) -> None:
        sent_at.append(clock.now - 100.0)
        clock.now += 0.007  # each send costs 7 ms: sleeping 20 ms after each would drift to 27 ms a send

    lateness = bench["steady"].paced(50, 50, send, clock=clock.time, sleep=clock.sleep)
    assert sent_at == pytest.approx([i / 50 for i in range(50)])
    assert max(lateness) == pytest.approx(0.0)


def test_a_late_send_does_not_shift_the_ones_after_it(bench: dict[str, ModuleType]) -> None:
    clock = FakeClock()
    sent_at: list[float] = []

    def send(i: int) -> None:
        sent_at.append(clock.now - 100.0)
        clock.now += 0.1 if i == 3 else 0.001  # one send stalls 100 ms (5 intervals at 50/s)

    lateness = bench["steady"].paced(50, 20, send, clock=clock.time, sleep=clock.sleep)
    # 4-8 go out back to back as soon as the stall ends, 9 onwards on their own due time again.
    assert sent_at[4:9] == pytest.approx([0.16, 0.161, 0.162, 0.163, 0.164])
    assert sent_at[9:] == pytest.approx([i / 50 for i in range(9, 20)])
    assert max(lateness) == pytest.approx(0.08)  # send 4: due at 0.08 s, sent at 0.16 s
    assert len(lateness) == 20


def test_options(bench: dict[str, ModuleType]) -> None:
    parse = bench["pipeline"].parse_args
    burst = parse([])
    assert (burst.n, burst.forward_n, burst.rate) == (2000, 2000, None)
    steady = parse(["--rate", "50", "--duration", "20"])
    assert (steady.n, steady.forward_n, steady.rate, steady.duration) == (0, 0, 50.0, 20.0)
    both = parse(["--n", "300", "--forward-n", "3000", "--rate", "50", "--duration", "20"])
    assert (both.n, both.forward_n, both.rate) == (300, 3000, 50.0)
    for bad in (["--rate", "50"], ["--duration", "20"], ["--rate", "0", "--duration", "20"],
                ["--rate", "50", "--duration", "-1"], ["--n", "0"]):
        with pytest.raises(SystemExit):
            parse(bad)


def test_steady_figures(bench: dict[str, ModuleType]) -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    fig = bench["steady"].steady_figures(
        rate=50.0, duration=2.0, sent=100, send_times=[i / 50 for i in range(100)], lateness=[0.0] * 99 + [0.004],
        latencies_s=latencies, cpu={"worker": 0.35, "broker": 0.1, "bench": 0.05, "machine": 1.0}, seen_s=2.5)
    assert fig["sent"] == 100 and fig["notified"] == 100
    assert fig["achieved_rate"] == pytest.approx(50.0)
    pct = bench["steady"].percentile  # the burst's nearest-rank percentile (common.percentile), in ms
    assert (fig["p50_ms"], fig["p95_ms"], fig["p99_ms"], fig["max_ms"]) == pytest.approx(
        (pct(latencies, 50) * 1000, pct(latencies, 95) * 1000, pct(latencies, 99) * 1000, 100))
    assert 49 <= fig["p50_ms"] <= 51 and 94 <= fig["p95_ms"] <= 96 and 98 <= fig["p99_ms"] <= 100
    assert fig["cpu_worker_ms_per_incident"] == pytest.approx(3.5)
    assert fig["cpu_other_s"] == pytest.approx(0.5)
    assert fig["send_late_max_ms"] == pytest.approx(4.0)


STEADY = {"rate": 50.0, "duration_s": 20.0, "sent": 1000, "notified": 1000, "achieved_rate": 49.9,
          "p50_ms": 41.0, "p95_ms": 90.0, "p99_ms": 150.0, "max_ms": 300.0, "send_late_p99_ms": 1.0,
          "send_late_max_ms": 3.0, "cpu_worker_s": 4.0, "cpu_worker_ms_per_incident": 4.0, "cpu_broker_s": 1.0,
          "cpu_bench_s": 0.5, "cpu_machine_s": 7.0, "cpu_other_s": 1.5, "seen_s": 21.0}
BURST = {"n": 300, "elapsed_s": 30.0, "rate": 10.0, "p50_s": 15.0, "p99_s": 29.0, "max_s": 30.0, "seen_s": 31.0,
         "produce_s": 0.1, "triage_done_s": 10.0, "plan_done_s": 20.0, "notified_done_s": 30.0,
         "cpu_worker_s": 30.0, "cpu_broker_s": 3.0, "cpu_bench_s": 0.5, "cpu_machine_s": 40.0, "cpu_other_s": 6.5}


def test_report_shows_the_steady_run(bench: dict[str, ModuleType]) -> None:
    report = bench["report"]
    base = {"command": "python bench/pipeline.py --n 300 --rate 50 --duration 20 --json /tmp/p.json",
            "database": "SQLite (WAL) in the temp dir", "forward": None}
    text = report.pipeline_section({**base, "pipeline": BURST, "steady": STEADY}, 4000.0)
    assert "steady 50 incidents/s for 20 s" in text
    assert "p50 41 ms, p95 90 ms, p99 150 ms, max 300 ms" in text
    assert "4.0 ms per incident" in text
    assert "10.0 incidents/s" in text  # the burst rows are still there
    # Older JSON (no steady key) and a steady-only run both render.
    assert "steady" not in report.pipeline_section({**base, "pipeline": BURST}, 4000.0)
    only = report.pipeline_section({**base, "pipeline": None, "steady": STEADY}, 4000.0)
    assert "p99 150 ms" in only and "pipeline throughput" not in only
    assert report._other_share({"pipeline": {**base, "pipeline": None, "steady": STEADY}}) == [
        ("pipeline steady", pytest.approx(1.5 / (21.0 * (report.os.cpu_count() or 1))))]


def test_run_all_runs_the_steady_mode(bench: dict[str, ModuleType]) -> None:
    run_all = bench["run_all"]
    args = run_all.parse_args([])
    script, argv, on_pg = run_all.bench_plan(args)["pipeline"]
    assert script == "pipeline" and not on_pg and "--profile" in argv  # the SQLite run is the profiled one
    assert argv[argv.index("--rate") + 1] == "50" and argv[argv.index("--duration") + 1] == "20"
    assert argv[argv.index("--n") + 1] == "1000"
    quick = run_all.bench_plan(run_all.parse_args(["--quick"]))["pipeline"][1]
    assert float(quick[quick.index("--rate") + 1]) * float(quick[quick.index("--duration") + 1]) < 50 * 20
    assert isinstance(args, argparse.Namespace)


def test_run_all_runs_pipeline_notifier_and_versus_on_both_databases(bench: dict[str, ModuleType]) -> None:
    plan = bench["run_all"].bench_plan(bench["run_all"].parse_args([]))
    for name in ("pipeline", "notifier", "versus"):
        assert plan[name][0] == plan[f"{name}_pg"][0] and not plan[name][2] and plan[f"{name}_pg"][2]
    assert set(plan) == set(bench["run_all"].BENCHES.split(","))
