"""A release's public SMS broadcast to N subscribers through a slow, throttling provider (issue 17).

Run by hand (pytest never collects it):

    python bench/release.py                  # 10,000 subscribers, 250 ms a send, 429 beyond 100 in flight
    python bench/release.py --n 10000 --delay 0.25 --cap 100 --unsubscribe 200 --json /tmp/release.json

1. The local Twilio-compatible server (tests/fixtures/twilio_server.py) runs in a child process, answering each send
   after --delay and HTTP 429 / error 20429 with Retry-After beyond --cap requests in flight (as bench/notifier.py).
2. N numbers subscribe to areas the release reaches (half to the town, half to 鸡山; the release is for 鸡山, a
   community of the town) and --outside more to 唐家 (another community: not reached), in a fresh SQLite store (or
   --db-url), by the store's own subscribe() one change at a time, as the SMS webhook records them.
3. A published release with channel sms_broadcast goes in the releases table, and the worker's broadcast job
   (streams/broadcast.py Broadcaster) plans it: timed. Then --unsubscribe of the reached numbers send 退订 (after
   planning, before sending), and the intents go through the concurrent notifier (streams/notifier.py Dispatcher,
   the real twilio client) in batches of notify_batch_size, as the notifier agent is handed them. A second planning
   and a replayed dispatch of every intent follow, and must send nothing.
4. Figures: planning time; first claim -> last result recorded ("handed over"); messages/s; at the server, messages
   per number (duplicates must be 0), messages to unsubscribed or unreached numbers (must be 0); 429 answers; and the
   store's per-release figures (sent, unsubscribed, failed, throttled).
"""

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import Child, clean_env, machine_facts, serve_fake_twilio, wait_for, write_json  # noqa: E402

from pingan.bootstrap import Services  # noqa: E402
from pingan.handlers.channels.twilio_sms import TwilioSmsChannel  # noqa: E402
from pingan.handlers.plans.planset import PlanSet  # noqa: E402
from pingan.schemas.areas import AlertArea  # noqa: E402
from pingan.schemas.common import LocalizedText  # noqa: E402
from pingan.schemas.notification import Notification  # noqa: E402
from pingan.schemas.release import Release, ReleaseChannel, ReleaseState, ReleaseTexts  # noqa: E402
from pingan.schemas.taxonomy import Category, Grade, Subtype  # noqa: E402
from pingan.settings import Settings  # noqa: E402
from pingan.store.releases import save as save_release  # noqa: E402
from pingan.store.repository import Store  # noqa: E402
from pingan.store.subscriptions import SubscriptionStore  # noqa: E402
from pingan.streams.broadcast import Broadcaster  # noqa: E402
from pingan.streams.notifier import Dispatcher  # noqa: E402

TOWN, JISHAN, TANGJIA = "440402100", "440402100003", "440402100001"


def the_release(now: datetime) -> Release:
    return Release(
        id="REL-BENCH-1", incident_id="INC-BENCH", state=ReleaseState.published, category=Category.natural_disaster,
        subtype=Subtype.meteorological, grade=Grade.II,
        texts=ReleaseTexts(headline=LocalizedText(zh="台风橙色预警", en="Typhoon orange warning"),
                           description=LocalizedText(zh="台风今晚登陆鸡山一带，请留在室内，远离海边。",
                                                     en="The typhoon lands near Jishan tonight: stay indoors.")),
        areas=[AlertArea(name="鸡山社区")], channels=[ReleaseChannel.cap, ReleaseChannel.sms_broadcast],
        drafted_by="pio", drafted_at=now, approved_by="commander", approved_at=now, published_by="pio",
        published_at=now, cap_identifier="bench-REL-BENCH-1")


def publish(store: Store, release: Release) -> None:
    """As the release workflow leaves a published release in the releases table."""
    with store.engine.begin() as conn:
        save_release(conn, release)


async def dispatch(dispatcher: Dispatcher, notes: list[Notification], batch: int) -> None:
    for i in range(0, len(notes), batch):
        await dispatcher.run(notes[i:i + batch])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=10_000, help="subscribers the release reaches")
    ap.add_argument("--outside", type=int, default=1_000, help="subscribers of another area (reached: none)")
    ap.add_argument("--delay", type=float, default=0.25, help="provider delay per send, seconds")
    ap.add_argument("--cap", type=int, default=100, help="requests in flight before the server answers 429; 0: none")
    ap.add_argument("--retry-after", type=float, default=1.0)
    ap.add_argument("--concurrency", type=int, default=None, help="notify_concurrency for twilio_sms")
    ap.add_argument("--unsubscribe", type=int, default=100, help="reached numbers that send 退订 after planning")
    ap.add_argument("--db-url", default=None)
    ap.add_argument("--json", default=None)
    ap.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve:
        serve_fake_twilio(args.delay, args.cap or None, args.retry_after)
        return

    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-release-"))
    log = tmp / "twilio.log"
    child = Child("twilio", [sys.executable, __file__, "--serve", "--delay", str(args.delay), "--cap",
                             str(args.cap), "--retry-after", str(args.retry_after)],
                  clean_env(PYTHONPATH=str(Path(__file__).resolve().parents[1])), log)
    try:
        tw = json.loads(wait_for(lambda: (log.read_text().splitlines() or [None])[0], 30, "the Twilio server",
                                 alive=child))
        store = Store(args.db_url or f"sqlite:///{tmp / 'pingan.db'}")
        subs = SubscriptionStore(store)
        phones = {f"+86139{i:08d}": (TOWN, JISHAN)[i % 2] for i in range(args.n)}
        phones.update({f"+86138{i:08d}": TANGJIA for i in range(args.outside)})
        t0 = time.perf_counter()
        for phone, area in phones.items():
            subs.subscribe(phone, area, "en" if phone.endswith("7") else "zh")
        subscribe_s = time.perf_counter() - t0
        reached = {p for p, a in phones.items() if a in (TOWN, JISHAN)}

        overrides = {"twilio_sms": args.concurrency} if args.concurrency else {}
        settings = Settings(data_dir=tmp, notify_concurrency=overrides)
        services = Services(settings=settings, store=store, plans=PlanSet.empty())
        publish(store, the_release(datetime.now(UTC)))
        t0 = time.perf_counter()
        intents = Broadcaster(services).due(force=True)
        plan_s = time.perf_counter() - t0
        replanned = Broadcaster(services).due(force=True)  # another worker, after: nothing

        gone = sorted(reached)[: args.unsubscribe]
        for phone in gone:
            subs.unsubscribe_all(phone)

        limit = settings.notify_limit("twilio_sms")
        channel = TwilioSmsChannel(tw["sid"], tw["token"], tw["from"], api_base_url=tw["base_url"], pool_size=limit)
        dispatcher = Dispatcher(store, {"twilio_sms": channel}, settings)
        started = time.perf_counter()
        asyncio.run(dispatch(dispatcher, intents, settings.notify_batch_size))
        elapsed = time.perf_counter() - started
        asyncio.run(dispatch(dispatcher, intents, settings.notify_batch_size))  # a replay: nothing goes
        dispatcher.close()

        sent_to = Counter(m.to for m in channel.client.messages.list(from_=tw["from"], page_size=1000))
        figures_store = subs.figures("REL-BENCH-1").as_dict()
        store.close()
    finally:
        child.stop()
    throttled = next((json.loads(x)["throttled"] for x in log.read_text().splitlines() if '"throttled"' in x), None)
    twice = sum(n - 1 for n in sent_to.values() if n > 1)
    wrong = sum(n for p, n in sent_to.items() if p not in reached or p in set(gone))
    expected = len(reached) - len(gone)
    handed = sum(1 for p in sent_to if p in reached)
    ok = (len(intents) == len(reached) and not replanned and twice == 0 and wrong == 0 and handed == expected
          and figures_store["sent"] == expected and figures_store["unsubscribed"] == len(gone))
    figures = {
        "subscribers": len(phones), "reached": len(reached), "unsubscribed_after_planning": len(gone),
        "delay_s": args.delay, "cap": args.cap, "concurrency": limit, "subscribe_s": subscribe_s,
        "plan_s": plan_s, "planned": len(intents), "replanned": len(replanned), "elapsed_s": elapsed,
        "rate_per_s": len(intents) / elapsed if elapsed else 0.0, "messages": sum(sent_to.values()),
        "twice": twice, "to_wrong_numbers": wrong, "throttled": throttled,
        "dispatcher_throttled": dispatcher.throttled, "store": figures_store, "ok": ok,
    }
    facts = machine_facts(tmp)
    print("\n".join([
        "", "=" * 78, f"Pingan release broadcast benchmark, {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"command: python {' '.join(sys.argv)}", f"machine: {facts.get('cpu', '')}, {os.cpu_count()} cores", "",
        f"{len(phones):,} subscribers ({subscribe_s:.1f} s to record), a release for 鸡山 reaching {len(reached):,}; "
        f"provider delay {args.delay * 1000:.0f} ms, 429 beyond {args.cap} in flight, notifier concurrency {limit}:",
        f"  planned {len(intents):,} intents in {plan_s:.2f} s (one transaction); a second planning: "
        f"{len(replanned)}",
        f"  {len(gone)} sent 退订 after planning; all handed over in {elapsed:.2f} s "
        f"({len(intents) / elapsed if elapsed else 0:,.0f} SMS/s)",
        f"  at the server: {sum(sent_to.values()):,} messages to {len(sent_to):,} numbers, {twice} twice, "
        f"{wrong} to unsubscribed or unreached numbers (a replayed dispatch included)",
        f"  throttled (429 / 20429): {throttled} answers, each queued again after Retry-After {args.retry_after:g} s",
        f"  store figures: {json.dumps({k: v for k, v in figures_store.items() if k != 'states'})}",
        f"  {'OK' if ok else 'NOT OK'}", "",
    ]))
    write_json(args.json, figures)
    if not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
