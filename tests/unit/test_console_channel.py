"""Console channel: stdout line, durable sink line, reconcile by key, whole lines under concurrency."""

import io
import json
import threading
from datetime import UTC, datetime
from pathlib import Path

from pingan.handlers.channels.console import ConsoleChannel, read_sink
from pingan.schemas.delivery import ReconcileOutcome, SendOutcome
from pingan.schemas.notification import Channel, Notification, Recipient


def make_notification(key: str = "key-0001", text: str = "化工厂泄漏，请立即前往指挥中心",
                      name: str = "值班室", recipient_id: str = "duty-room") -> Notification:
    return Notification(
        idempotency_key=key, incident_id="inc-1", plan_id="chem-leak", plan_version=1, step="alert",
        recipient=Recipient(id=recipient_id, name=name, channel=Channel.console, address=name),
        channel=Channel.console, text=text, created_at=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    )


def test_send_writes_stdout_and_one_sink_line(tmp_path: Path, capsys) -> None:
    sink = tmp_path / "nested" / "console.log"
    result = ConsoleChannel(sink).send(make_notification())

    assert result.outcome is SendOutcome.delivered
    assert result.provider_id == "console:key-0001"
    out = capsys.readouterr().out
    assert out.count("\n") == 1 and "值班室" in out and "化工厂泄漏" in out
    lines = sink.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 1
    record = json.loads(lines[0])
    assert record["idempotency_key"] == "key-0001"
    assert record["incident_id"] == "inc-1"
    assert record["recipient_id"] == "duty-room"
    assert record["recipient"] == "值班室"
    assert record["text"] == "化工厂泄漏，请立即前往指挥中心"
    assert datetime.fromisoformat(record["at"]).tzinfo is not None


def test_multiline_text_prints_one_line_but_sink_keeps_it_exact(tmp_path: Path) -> None:
    stream = io.StringIO()
    ConsoleChannel(tmp_path / "sink", stream=stream).send(make_notification(text="line one\nline two"))
    assert stream.getvalue().count("\n") == 1
    assert read_sink(tmp_path / "sink")[0]["text"] == "line one\nline two"


def test_sink_is_appended_not_overwritten(tmp_path: Path) -> None:
    sink = tmp_path / "console.log"
    ConsoleChannel(sink, stream=io.StringIO()).send(make_notification("key-0001"))
    ConsoleChannel(sink, stream=io.StringIO()).send(make_notification("key-0002"))
    assert [r["idempotency_key"] for r in read_sink(sink)] == ["key-0001", "key-0002"]


def test_reconcile_found_and_not_found(tmp_path: Path) -> None:
    sink = tmp_path / "console.log"
    ConsoleChannel(sink, stream=io.StringIO()).send(make_notification("key-sent"))

    fresh = ConsoleChannel(sink)  # as after a restart: nothing in memory, only the sink
    sent = fresh.reconcile(make_notification("key-sent"))
    assert sent.outcome is ReconcileOutcome.sent and sent.provider_id == "console:key-sent"
    assert fresh.reconcile(make_notification("key-lost")).outcome is ReconcileOutcome.not_sent


def test_reconcile_without_sink_file_is_not_sent(tmp_path: Path) -> None:
    channel = ConsoleChannel(tmp_path / "missing.log")
    assert channel.reconcile(make_notification()).outcome is ReconcileOutcome.not_sent
    assert read_sink(tmp_path / "missing.log") == []


def test_reconcile_ignores_a_key_quoted_inside_another_text(tmp_path: Path) -> None:
    sink = tmp_path / "console.log"
    ConsoleChannel(sink, stream=io.StringIO()).send(
        make_notification("key-other", text='{"idempotency_key": "key-victim"}'))
    verdict = ConsoleChannel(sink).reconcile(make_notification("key-victim"))
    assert verdict.outcome is ReconcileOutcome.not_sent


def test_a_torn_line_from_a_crash_does_not_hide_the_next_record(tmp_path: Path) -> None:
    sink = tmp_path / "console.log"
    sink.write_text('{"idempotency_key": "key-torn", "incident_id": "in', encoding="utf-8")  # no newline
    channel = ConsoleChannel(sink, stream=io.StringIO())
    channel.send(make_notification("key-after"))

    assert [r["idempotency_key"] for r in read_sink(sink)] == ["key-after"]
    fresh = ConsoleChannel(sink)
    assert fresh.reconcile(make_notification("key-after")).outcome is ReconcileOutcome.sent
    assert fresh.reconcile(make_notification("key-torn")).outcome is ReconcileOutcome.not_sent


def test_unwritable_sink_is_a_transient_failure(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    result = ConsoleChannel(blocker / "console.log", stream=io.StringIO()).send(make_notification())
    assert result.outcome is SendOutcome.transient_failure
    assert "console sink" in result.detail


def test_concurrent_appends_keep_whole_lines(tmp_path: Path) -> None:
    sink = tmp_path / "console.log"
    threads_n, per_thread = 8, 40
    # Long texts (several KiB of UTF-8) make interleaving likely if writes were not single O_APPEND writes.
    text = "紧急通知：" + "疏散" * 700
    barrier = threading.Barrier(threads_n)

    def worker(t: int) -> None:
        channel = ConsoleChannel(sink, stream=io.StringIO())  # each its own instance, like separate processes
        barrier.wait()
        for i in range(per_thread):
            assert channel.send(make_notification(f"key-{t:02d}-{i:03d}", text=text)).outcome \
                is SendOutcome.delivered

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(threads_n)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()

    raw_lines = sink.read_text(encoding="utf-8").splitlines()
    assert len(raw_lines) == threads_n * per_thread
    records = [json.loads(line) for line in raw_lines]  # raises if any line was torn or interleaved
    assert {r["idempotency_key"] for r in records} == {
        f"key-{t:02d}-{i:03d}" for t in range(threads_n) for i in range(per_thread)}
    assert all(r["text"] == text for r in records)
