"""The notifier against a slow provider: N SMS to N recipients through the local Twilio-compatible server answering
each send after --delay (250 ms, as a real Twilio's 200-500 ms) and 429 / 20429 with Retry-After beyond --cap
requests in flight.

Run by hand (pytest never collects it):

    python bench/notifier.py                 # 1,000 SMS, 250 ms, cap 100; about half a minute
    python bench/notifier.py --n 1000 --delay 0.25 --cap 100 --sequential-n 20 --json /tmp/notifier.json

1. The server runs in a child process (tests/fixtures/twilio_server.py), so its threads do not share this
   process's interpreter lock with the notifier's.
2. N intents, one per recipient, are written to a fresh SQLite store (or --db-url); the concurrent notifier
   (streams/notifier.py Dispatcher, the real twilio client over its pooled session) is handed them in batches of
   notify_batch_size, as the notifier agent is. The figure is first claim -> last result recorded ("handed over":
   Twilio answered and the ledger says sent), and the check: N messages at the server, N bodies, none twice, every
   row `sent`.
3. For comparison, --sequential-n intents go through notify_stage one after the other (the notifier before issue
   15): seconds per send, and what N would take at that pace.

The broker and faust are not in this measurement (bench/pipeline.py has them); the store, the real client and
HTTP to the provider are.
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import Child, clean_env, machine_facts, serve_fake_twilio, wait_for, write_json  # noqa: E402

from pingan.handlers.channels.twilio_sms import TwilioSmsChannel  # noqa: E402
from pingan.schemas.notification import Channel, DeliveryState, Notification, Recipient  # noqa: E402
from pingan.settings import Settings  # noqa: E402
from pingan.store.repository import Store  # noqa: E402
from pingan.streams.notifier import Dispatcher  # noqa: E402
from pingan.streams.stages import notify_stage  # noqa: E402


def intents(tag: str, n: int) -> list[Notification]:
    now = datetime.now(UTC)
    return [Notification(
        idempotency_key=f"{tag}-{i:06d}".ljust(16, "0"), incident_id=f"INC-{tag}", plan_id="bench", plan_version=1,
        step="sms", recipient=Recipient(id=f"p{i}", name=f"人{i}", channel=Channel.twilio_sms,
                                        address=f"+1202{5000000 + i:07d}"),
        channel=Channel.twilio_sms, text=f"【演练】bench {tag} {i}", created_at=now) for i in range(n)]


async def dispatch(dispatcher: Dispatcher, notes: list[Notification], batch: int) -> None:
    for i in range(0, len(notes), batch):
        await dispatcher.run(notes[i:i + batch])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1000)
    ap.add_argument("--delay", type=float, default=0.25, help="provider delay per send, seconds")
    ap.add_argument("--cap", type=int, default=100, help="requests in flight before the server answers 429; 0: none")
    ap.add_argument("--retry-after", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=None, help="notify_concurrency for twilio_sms (default: "
                    "the setting's)")
    ap.add_argument("--sequential-n", type=int, default=20, help="intents sent one after the other, for comparison")
    ap.add_argument("--db-url", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_fake_twilio(args.delay, args.cap or None, args.retry_after)
        return

    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-notifier-"))
    log = tmp / "twilio.log"
    child = Child("twilio", [sys.executable, __file__, "--serve", "--delay", str(args.delay), "--cap",
                             str(args.cap), "--retry-after", str(args.retry_after)],
                  clean_env(PYTHONPATH=str(Path(__file__).resolve().parents[1])), log)
    try:
        line = wait_for(lambda: (log.read_text().splitlines() or [None])[0], 30, "the Twilio server", alive=child)
        tw = json.loads(line)
        store = Store(args.db_url or f"sqlite:///{tmp / 'pingan.db'}")
        overrides = {"twilio_sms": args.concurrency} if args.concurrency else {}
        settings = Settings(data_dir=tmp, notify_concurrency=overrides)
        limit = settings.notify_limit("twilio_sms")
        channel = TwilioSmsChannel(tw["sid"], tw["token"], tw["from"], api_base_url=tw["base_url"], pool_size=limit)
        channels = {"twilio_sms": channel}

        notes = intents("c", args.n)
        store.apply_response("INC-c", "bench", 1, notes, [])
        dispatcher = Dispatcher(store, channels, settings)
        started = time.perf_counter()
        asyncio.run(dispatch(dispatcher, notes, settings.notify_batch_size))
        elapsed = time.perf_counter() - started
        dispatcher.close()

        seq = intents("s", args.sequential_n)
        seq_s = 0.0
        if seq:
            store.apply_response("INC-s", "bench", 1, seq, [])
            t0 = time.perf_counter()
            for n in seq:
                notify_stage(store, channels, n)
            seq_s = time.perf_counter() - t0

        bodies = [m.body for m in channel.client.messages.list(from_=tw["from"], page_size=1000)]
        mine = [b for b in bodies if b.startswith("【演练】bench c ")]
        twice = len(mine) - len(set(mine))
        with store.engine.connect() as conn:
            from sqlalchemy import text

            states = dict(conn.execute(text("SELECT state, COUNT(*) FROM notifications WHERE incident_id = 'INC-c' "
                                            "GROUP BY state")).all())
        store.close()
    finally:
        child.stop()
    throttled = next((json.loads(x)["throttled"] for x in log.read_text().splitlines() if '"throttled"' in x), None)
    ok = len(set(mine)) == args.n and twice == 0 and states == {DeliveryState.sent.value: args.n}
    per_send = seq_s / len(seq) if seq else 0.0
    figures = {
        "n": args.n, "delay_s": args.delay, "cap": args.cap, "concurrency": limit, "elapsed_s": elapsed,
        "rate_per_s": args.n / elapsed, "messages": len(mine), "twice": twice, "states": states,
        "throttled": throttled, "dispatcher_throttled": dispatcher.throttled, "ok": ok,
        "sequential_n": len(seq), "sequential_s_per_send": per_send, "sequential_projected_s": per_send * args.n,
    }
    facts = machine_facts(tmp)
    print("\n".join([
        "", "=" * 78, f"Pingan notifier benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: python {' '.join(sys.argv)}", f"machine: {facts.get('cpu', '')}, {os.cpu_count()} cores", "",
        f"{args.n:,} SMS to {args.n:,} recipients, provider delay {args.delay * 1000:.0f} ms, 429 beyond {args.cap} "
        f"in flight, notifier concurrency {limit}:",
        f"  all handed over in {elapsed:.2f} s  ({args.n / elapsed:,.0f} SMS/s)",
        f"  at the server: {len(mine):,} messages, {twice} twice; ledger {states}",
        f"  throttled (429 / 20429): {throttled} answers, each queued again after Retry-After {args.retry_after:g} s",
        f"  one after the other (notify_stage, before issue 15): {per_send * 1000:.0f} ms a send over "
        f"{len(seq)}, so {per_send * args.n:.0f} s for {args.n:,}",
        f"  {'OK' if ok else 'NOT OK'}", "",
    ]))
    write_json(args.json, figures)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
