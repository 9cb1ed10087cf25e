"""Polls an Atom or RSS index of CAP messages and hands every new, valid message's items on.

    poller = CapFeedPoller("https://alerts.example.gov/cap/feed.atom", on_items=accept)
    poller.start()  # polls now, then every interval_s, on a daemon thread
    ...
    poller.stop()

A link is fetched once: it is remembered as seen when its message was handed on, when it was rejected (a bad
message stays bad), or after max_attempts failed fetches. A CAP message is immutable (a changed alert is a new
message, with its own identifier and link), so the link is the key; pass `seen` (and `on_seen`, to persist new
keys) to carry the memory over a restart, and parse_cap's source_key keeps a re-fetched message one event.

Within a poll the new messages are handed on oldest <sent> first, so an Alert reaches triage before its Update.
"""

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from urllib.parse import urljoin, urlsplit

import httpx
from lxml import etree

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_mapping import CapMapping
from pingan.schemas.adapters.cap_xml import safe_parse
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.events import IntakeItem

log = logging.getLogger(__name__)

ATOM_NS = "http://www.w3.org/2005/Atom"
RSS1_NS = "http://purl.org/rss/1.0/"
CAP_MIME = "application/cap+xml"
MAX_FETCH_BYTES = 1024 * 1024
ALLOWED_SCHEMES = frozenset({"http", "https"})


class FetchRefused(Exception):
    """A link that will never be fetched: another scheme, or a body over the size limit."""


def find_cap_links(feed: bytes, feed_url: str, max_bytes: int = MAX_FETCH_BYTES) -> list[str]:
    """Absolute URLs of the CAP messages an Atom or RSS (2.0 or 1.0) feed lists, in feed order, without repeats.

    Atom: per entry, the link typed application/cap+xml, else the alternate link. RSS: per item, the enclosure
    typed application/cap+xml, else <link> (a link to something that is not CAP is then rejected by parse_cap).
    """
    root = safe_parse(feed, source_name=feed_url, max_bytes=max_bytes)
    qname = etree.QName(root)
    found: list[tuple[etree._Element, str]] = []
    if qname.namespace == ATOM_NS and qname.localname == "feed":
        for entry in root.iterfind(f"{{{ATOM_NS}}}entry"):
            link = _atom_cap_link(entry.findall(f"{{{ATOM_NS}}}link"))
            if link is not None:
                found.append((link, link.get("href", "")))
    elif qname.namespace is None and qname.localname == "rss":
        for item in root.iterfind("channel/item"):
            enclosure = next((e for e in item.iterfind("enclosure") if _is_cap_type(e.get("type"))), None)
            if enclosure is not None:
                found.append((enclosure, enclosure.get("url", "")))
            elif (link := item.find("link")) is not None and link.text:
                found.append((link, link.text))
    elif qname.localname == "RDF":
        for item in root.iterfind(f"{{{RSS1_NS}}}item"):
            if (link := item.find(f"{{{RSS1_NS}}}link")) is not None and link.text:
                found.append((link, link.text))
    else:
        raise IntakeError(f"<{qname.localname}> is neither an Atom <feed> nor an RSS <rss>", source=feed_url)
    urls: list[str] = []
    for el, href in found:
        href = href.strip()
        if not href:
            continue
        # Relative links resolve against xml:base where the feed sets one, else against the feed's own URL.
        base = urljoin(feed_url, el.base) if el.base else feed_url
        url = urljoin(base, href)
        if url not in urls:
            urls.append(url)
    return urls


def _is_cap_type(mime: str | None) -> bool:
    return bool(mime) and mime.split(";")[0].strip().lower() == CAP_MIME


def _atom_cap_link(links: list[etree._Element]) -> etree._Element | None:
    # A link typed application/cap+xml wins; else the entry's alternate link (rel defaults to alternate).
    typed = [link for link in links if _is_cap_type(link.get("type")) and link.get("rel", "alternate") != "self"]
    if typed:
        return typed[0]
    return next((link for link in links if link.get("rel", "alternate") == "alternate"), None)


@dataclass
class PollReport:
    fetched: int = 0  # CAP messages fetched
    accepted: int = 0  # of them, parsed and handed to on_items
    rejected: int = 0  # refused for good: invalid CAP, oversized, not http(s)
    errors: list[str] = field(default_factory=list)  # every problem, rejections and transient failures alike


class CapFeedPoller:
    def __init__(
        self,
        feed_url: str,
        *,
        on_items: Callable[[list[IntakeItem]], None],
        fetch: Callable[[str], bytes] | None = None,
        interval_s: float = 60.0,
        seen: set[str] | None = None,
        on_seen: Callable[[str], None] | None = None,
        mapping: CapMapping | None = None,
        timeout_s: float = 10.0,
        max_bytes: int = MAX_FETCH_BYTES,
        max_attempts: int = 3,
    ) -> None:
        """`fetch(url) -> bytes` replaces the built-in httpx fetch (the scheme and size checks still apply);
        `seen` is the set of links already handled (it is updated in place); `on_seen(url)` is called for
        every link added to it, so the caller can persist them."""
        self.feed_url = feed_url
        self.on_items = on_items
        self.interval_s = interval_s
        self.seen: set[str] = seen if seen is not None else set()
        self.on_seen = on_seen
        self.mapping = mapping
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_attempts = max_attempts
        self._fetch = fetch or self._http_fetch
        self._client: httpx.Client | None = None
        self._failures: dict[str, int] = {}
        self._poll_lock = threading.Lock()
        self._stop_event = threading.Event()
        self._thread: threading.Thread | None = None

    # -- fetching ---------------------------------------------------------------------------------------------

    def _http_fetch(self, url: str) -> bytes:
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_s, follow_redirects=True, max_redirects=5,
                                        headers={"User-Agent": "pingan-cap-feed/0.1"})
        with self._client.stream("GET", url) as response:
            response.raise_for_status()
            declared = response.headers.get("content-length")
            if declared and declared.isdigit() and int(declared) > self.max_bytes:
                raise FetchRefused(f"{declared} bytes declared; the limit is {self.max_bytes}")
            body = bytearray()
            # Counted after decompression: a small gzip bomb stops at the limit as well.
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > self.max_bytes:
                    raise FetchRefused(f"more than {self.max_bytes} bytes; refused")
            return bytes(body)

    def _get(self, url: str) -> bytes:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ALLOWED_SCHEMES:
            raise FetchRefused(f"scheme {scheme or '(none)'!r} is not http or https")
        data = self._fetch(url)
        if len(data) > self.max_bytes:
            raise FetchRefused(f"{len(data)} bytes; the limit is {self.max_bytes}")
        return data

    # -- polling ----------------------------------------------------------------------------------------------

    def _mark_seen(self, url: str) -> None:
        self._failures.pop(url, None)
        if url in self.seen:
            return
        self.seen.add(url)
        if self.on_seen is not None:
            try:
                self.on_seen(url)
            except Exception:  # persisting is best effort: the link is still seen for this process
                log.exception("cap feed %s: on_seen(%s) failed", self.feed_url, url)

    def _problem(self, report: PollReport, url: str, message: str, *, rejected: bool) -> None:
        report.errors.append(f"{url}: {message}")
        if rejected:
            report.rejected += 1
            log.error("cap feed %s: rejected %s: %s", self.feed_url, url, message)
            self._mark_seen(url)
            return
        self._failures[url] = failures = self._failures.get(url, 0) + 1
        if failures >= self.max_attempts:
            log.error("cap feed %s: giving up on %s after %d attempts: %s", self.feed_url, url, failures, message)
            self._mark_seen(url)
        else:
            log.warning("cap feed %s: %s failed (attempt %d, will retry): %s", self.feed_url, url, failures, message)

    def poll_once(self) -> PollReport:
        """Fetch the feed and every link not seen yet; hand the valid messages' items to on_items."""
        with self._poll_lock:
            report = PollReport()
            try:
                links = find_cap_links(self._get(self.feed_url), self.feed_url, self.max_bytes)
            except Exception as exc:  # unreachable, refused or not a feed: nothing to do until the next poll
                report.errors.append(f"{self.feed_url}: {exc}")
                log.error("cap feed %s: cannot read the feed: %s", self.feed_url, exc)
                return report
            parsed: list[tuple[str, list[IntakeItem]]] = []
            for url in links:
                if url in self.seen:
                    continue
                try:
                    data = self._get(url)
                except FetchRefused as exc:
                    self._problem(report, url, str(exc), rejected=True)
                    continue
                except Exception as exc:  # network, HTTP status, a custom fetch's failure: maybe transient
                    self._problem(report, url, f"{type(exc).__name__}: {exc}", rejected=False)
                    continue
                report.fetched += 1
                try:
                    parsed.append((url, parse_cap(data, self.mapping, source_name=url)))
                except IntakeError as exc:
                    self._problem(report, url, str(exc), rejected=True)
            parsed.sort(key=lambda entry: _sent(entry[1]))
            for position, (url, items) in enumerate(parsed):
                try:
                    self.on_items(items)
                except Exception as exc:
                    # Downstream failed: this link and every later one stay unseen, so the next poll hands them
                    # on again in the same order (an Update must not overtake the Alert it updates).
                    log.exception("cap feed %s: on_items failed for %s", self.feed_url, url)
                    report.errors.append(f"{url}: on_items failed: {exc}")
                    report.errors.extend(f"{later}: deferred to the next poll" for later, _ in parsed[position + 1:])
                    break
                report.accepted += 1
                self._mark_seen(url)
            return report

    # -- the thread -------------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop_event.clear()
        self._thread = threading.Thread(target=self._run, name=f"cap-feed:{self.feed_url}", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop_event.set()
        if self._thread is not None:
            self._thread.join(timeout_s)
            self._thread = None
        self.close()

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None

    def _run(self) -> None:
        while not self._stop_event.is_set():
            try:
                report = self.poll_once()
                if report.fetched or report.errors:
                    log.info("cap feed %s: fetched %d, accepted %d, rejected %d, errors %d", self.feed_url,
                             report.fetched, report.accepted, report.rejected, len(report.errors))
            except Exception:  # never let one bad poll end the loop
                log.exception("cap feed %s: poll failed", self.feed_url)
            self._stop_event.wait(self.interval_s)


def _sent(items: list[IntakeItem]) -> datetime:
    try:
        return datetime.fromisoformat(items[0].report.labels["cap_sent"])
    except (IndexError, KeyError, ValueError):
        return datetime.max.replace(tzinfo=UTC)
