"""CapFeedPoller against a local HTTP server (127.0.0.1) serving Atom and RSS feeds of the real CAP samples."""

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from pingan.schemas.events import IntakeItem, RawKind
from pingan.streams.cap_feed import CapFeedPoller, find_cap_links

SAMPLES = Path(__file__).resolve().parents[2] / ".." / "shared" / "samples" / "cap"
pytestmark = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"CAP samples not found at {SAMPLES}")

VALID = ["us-wcatwc-tsunami-warning-update.cap", "tw-wra-reservoir-discharge-zh.cap",
         "oasis-cap12-A3-earthquake-update.xml"]
INVALID = "INVALID-missing-scope.cap"


@dataclass
class FeedServer:
    url: str
    feeds: dict[str, bytes] = field(default_factory=dict)  # path -> body, set by each test
    requests: list[str] = field(default_factory=list)
    fail: dict[str, int] = field(default_factory=dict)  # path -> status to answer with

    def cap_requests(self) -> list[str]:
        return [p for p in self.requests if not p.startswith("/feeds/")]


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    state = FeedServer(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            state.requests.append(self.path)
            if self.path in state.fail:
                return self._send(state.fail[self.path], b"unavailable")
            if self.path in state.feeds:
                return self._send(200, state.feeds[self.path], "application/atom+xml")
            if self.path == "/big.cap":
                return self._send(200, b"<alert>" + b" " * (2 * 1024 * 1024) + b"</alert>")
            name = self.path.removeprefix("/cap/")
            # Only sample files by plain name: the server is for the test, but it need not serve /etc.
            if self.path.startswith("/cap/") and "/" not in name and not name.startswith("."):
                target = SAMPLES / name
                if target.is_file():
                    return self._send(200, target.read_bytes())
            self._send(404, b"not found")

        def _send(self, status: int, body: bytes, content_type: str = "application/cap+xml") -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    # A client that stops reading (the 1 MiB limit) must not leave a handler blocked in write for minutes.
    Handler.timeout = 5
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.block_on_close = False
    state.url = f"http://127.0.0.1:{server.server_port}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


def atom(*hrefs: str) -> bytes:
    # Relative links, and an HTML alternate beside the typed CAP link, as real feeds have.
    entries = "".join(
        f"<entry><id>urn:x:{i}</id><title>alert {i}</title><updated>2024-01-01T00:00:00Z</updated>"
        f'<link rel="alternate" type="text/html" href="/html/{i}"/>'
        f'<link rel="alternate" type="application/cap+xml" href="{href}"/></entry>'
        for i, href in enumerate(hrefs))
    return (f'<?xml version="1.0" encoding="UTF-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>CAP</title>'
            f"<id>urn:x</id><updated>2024-01-01T00:00:00Z</updated>{entries}</feed>").encode()


def rss(*hrefs: str) -> bytes:
    # Alternately <link> and <enclosure type="application/cap+xml">.
    items = "".join(
        f"<item><title>alert {i}</title><link>{href}</link></item>" if i % 2 == 0 else
        f'<item><title>alert {i}</title><link>/html/{i}</link><enclosure url="{href}" length="1" '
        f'type="application/cap+xml"/></item>'
        for i, href in enumerate(hrefs))
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>CAP</title>'
            f"{items}</channel></rss>").encode()


class Collector:
    def __init__(self) -> None:
        self.batches: list[list[IntakeItem]] = []
        self.fail_next = 0

    def __call__(self, items: list[IntakeItem]) -> None:
        if self.fail_next:
            self.fail_next -= 1
            raise RuntimeError("downstream unavailable")
        self.batches.append(items)

    def identifiers(self) -> list[str]:
        return [batch[0].report.labels["cap_identifier"] for batch in self.batches]


@pytest.mark.parametrize("kind", ["atom", "rss"])
def test_poll_accepts_valid_rejects_invalid_and_fetches_each_once(
        feed_server: FeedServer, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    hrefs = [f"../cap/{name}" for name in [*VALID, INVALID]]
    feed_server.feeds["/feeds/alerts"] = atom(*hrefs) if kind == "atom" else rss(*hrefs)
    collected = Collector()
    poller = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=collected)

    with caplog.at_level(logging.ERROR, logger="pingan.streams.cap_feed"):
        report = poller.poll_once()

    assert (report.fetched, report.accepted, report.rejected) == (4, 3, 1)
    assert len(report.errors) == 1 and INVALID in report.errors[0] and "<scope> is missing" in report.errors[0]
    assert any(INVALID in r.getMessage() and r.levelno == logging.ERROR for r in caplog.records)
    assert sorted(feed_server.cap_requests()) == sorted(f"/cap/{name}" for name in [*VALID, INVALID])
    # Handed on oldest <sent> first, whatever the feed's order: 2003 earthquake, 2011 tsunami, 2014 reservoir.
    assert collected.identifiers() == ["TRI13970876.2", "PAAQ-2-lqw6d6", "WRA_ReservoirWarn_201405142010"]
    assert collected.batches[0][0].kind is RawKind.update
    assert poller.seen == {f"{feed_server.url}/cap/{name}" for name in [*VALID, INVALID]}

    again = poller.poll_once()
    assert (again.fetched, again.accepted, again.rejected, again.errors) == (0, 0, 0, [])
    assert len(feed_server.cap_requests()) == 4  # the second poll read only the feed
    assert len(collected.batches) == 3


def test_seen_links_survive_a_restart(feed_server: FeedServer) -> None:
    feed_server.feeds["/feeds/alerts"] = atom(*(f"/cap/{name}" for name in VALID))
    persisted: list[str] = []
    first = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=Collector(), on_seen=persisted.append)
    assert first.poll_once().accepted == 3
    assert len(persisted) == 3

    second = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=Collector(), seen=set(persisted))
    assert second.poll_once().fetched == 0


def test_downstream_failure_leaves_the_links_for_the_next_poll_in_order(feed_server: FeedServer) -> None:
    feed_server.feeds["/feeds/alerts"] = rss(*(f"/cap/{name}" for name in VALID))
    collected = Collector()
    collected.fail_next = 1
    poller = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=collected)
    report = poller.poll_once()
    assert (report.fetched, report.accepted) == (3, 0) and "downstream unavailable" in report.errors[0]
    assert sum("deferred to the next poll" in e for e in report.errors) == 2
    assert poller.seen == set()
    assert poller.poll_once().accepted == 3
    assert collected.identifiers() == ["TRI13970876.2", "PAAQ-2-lqw6d6", "WRA_ReservoirWarn_201405142010"]


def test_oversized_and_non_http_links_are_refused(feed_server: FeedServer) -> None:
    feed_server.feeds["/feeds/alerts"] = atom("/big.cap", "file:///etc/passwd", f"/cap/{VALID[1]}")
    poller = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=Collector())
    report = poller.poll_once()
    assert (report.fetched, report.accepted, report.rejected) == (1, 1, 2)
    assert any("big.cap" in e and "limit" in e for e in report.errors)
    assert any("file:///etc/passwd" in e and "not http or https" in e for e in report.errors)
    assert poller.poll_once().errors == []  # refused for good: not tried again


def test_a_custom_fetch_still_gets_the_scheme_check() -> None:
    asked: list[str] = []

    def fetch(url: str) -> bytes:
        asked.append(url)
        return atom("file:///etc/passwd", f"{SAMPLES.as_uri()}/{VALID[0]}") if url.endswith("/feed") else b""

    poller = CapFeedPoller("https://feeds.example/feed", on_items=Collector(), fetch=fetch)
    report = poller.poll_once()
    assert asked == ["https://feeds.example/feed"]
    assert report.rejected == 2


def test_unavailable_links_are_retried_then_given_up(feed_server: FeedServer) -> None:
    feed_server.feeds["/feeds/alerts"] = atom(f"/cap/{VALID[0]}")
    feed_server.fail[f"/cap/{VALID[0]}"] = 503
    poller = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=Collector(), max_attempts=2)
    first = poller.poll_once()
    assert (first.fetched, first.rejected) == (0, 0) and "503" in first.errors[0]
    assert poller.seen == set()
    poller.poll_once()
    assert poller.seen == {f"{feed_server.url}/cap/{VALID[0]}"}  # gave up after two attempts
    assert poller.poll_once().errors == []


def test_a_broken_feed_is_reported_not_raised(feed_server: FeedServer) -> None:
    feed_server.feeds["/feeds/alerts"] = (SAMPLES / "ATTACK-xxe-external-entities.cap").read_bytes()
    report = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=Collector()).poll_once()
    assert report.fetched == 0 and "DOCTYPE" in report.errors[0]
    assert feed_server.cap_requests() == []


def test_find_cap_links_resolves_relative_links_and_xml_base() -> None:
    feed = (b'<feed xmlns="http://www.w3.org/2005/Atom" xml:base="https://a.example/alerts/">'
            b'<entry><link href="one.cap"/></entry>'
            b'<entry xml:base="/other/"><link href="two.cap" type="application/cap+xml"/></entry>'
            b'<entry><link rel="self" href="x"/></entry>'
            b'<entry><link href="one.cap"/></entry></feed>')
    assert find_cap_links(feed, "https://a.example/feeds/index.atom") == [
        "https://a.example/alerts/one.cap", "https://a.example/other/two.cap"]


def test_the_thread_polls_until_stopped(feed_server: FeedServer) -> None:
    feed_server.feeds["/feeds/alerts"] = rss(*(f"/cap/{name}" for name in VALID))
    collected = Collector()
    poller = CapFeedPoller(f"{feed_server.url}/feeds/alerts", on_items=collected, interval_s=0.05)
    poller.start()
    try:
        deadline = time.monotonic() + 10
        while len(collected.batches) < 3 and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.2)  # a few more polls: nothing new arrives
    finally:
        poller.stop()
    assert len(collected.batches) == 3
    feed_reads = feed_server.requests.count("/feeds/alerts")
    assert feed_reads >= 2
    time.sleep(0.2)
    assert feed_server.requests.count("/feeds/alerts") == feed_reads  # stopped means stopped
