"""What anyone may read, without signing in (issue 17): published releases as CAP 1.2, an Atom feed of them, and a
page of the warnings in force.

    GET /public/cap/feed.atom          Atom 1.0, one entry per published release, newest first; exercise releases
                                       only with ?exercise=true. Each entry links (rel=alternate,
                                       type=application/cap+xml) to its CAP document.
    GET /public/cap/{identifier}.xml   one published release as CAP 1.2 (schemas/adapters/cap_out.py); 404 naming
                                       the identifier when no published release has it
    GET /public/                       the warnings in force, for a phone: zh-CN or en (?lang=, else the console's
                                       language cookie, else Accept-Language), no login, no script, its stylesheet
                                       served from here (/public/static/public.css)

Only releases that name the CAP channel (ReleaseChannel.cap) are here; one sent by SMS or webhook only is not, and
a later CAP release does not reference it (an update that is the first on CAP is an Alert, see cap_out). A warning
is in force when its incident's latest CAP release has not expired (PINGAN_CAP_EXPIRES_H after publication, the CAP
<expires> of the document) and no all-clear of the incident has been published, on any channel. Exercise releases
never show on the page.

With PINGAN_CAP_SIGNING_KEY / _CERT set (settings.cap_signer, loaded and checked when the settings are read), every
CAP document is served signed (schemas/adapters/cap_sign.py: an enveloped XML Signature, the alert's last child).
Signing costs milliseconds, so the signed bytes are kept per identifier and unsigned body (the body can differ by
the base URL when PINGAN_PUBLIC_URL is unset), up to SIGNED_CACHE_SIZE documents; the ETag is of the signed bytes,
the same on every request.

Every answer carries ETag (a hash of the body), Last-Modified (the newest publication it shows, or the latest expiry
that changed the page) and Cache-Control max-age; a matching If-None-Match (or, without one, an
If-Modified-Since not older than Last-Modified) gets 304. A CAP document never changes once published, so it may be
cached longer than the feed and the page.

The routes are named in web/openapi_doc.py's PUBLIC set (no security) and in tests/integration/test_permissions.py's
public table, which otherwise fails a route that asks for no person.
"""

import hashlib
import logging
import threading
import uuid
from collections import OrderedDict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated
from zoneinfo import ZoneInfo

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import FileResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from lxml import etree

from pingan.schemas.adapters.cap_mapping import DEFAULT_MAPPING
from pingan.schemas.adapters.cap_out import CAP_MEDIA_TYPE, cap_time, release_to_cap, xml_safe
from pingan.schemas.common import LocalizedText
from pingan.schemas.release import Release, ReleaseChannel, ReleaseKind, ReleaseState
from pingan.settings import Settings
from pingan.store import releases as release_store
from pingan.store.repository import Store
from pingan.web.console.i18n import LANG_COOKIE, LANGS, normal_lang, term, translate

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # signxml (0.2 s to import) is loaded by the settings only when signing is configured
    from pingan.schemas.adapters.cap_sign import CapSigner

ATOM_NS = "http://www.w3.org/2005/Atom"
ATOM_MEDIA_TYPE = "application/atom+xml; charset=utf-8"
FEED_MAX_AGE_S = 60  # a feed reader polls; a warning should not wait longer than a minute in a cache
DOCUMENT_MAX_AGE_S = 3600  # a published CAP document never changes
PAGE_MAX_AGE_S = 60
FEED_LIMIT = 200  # entries; older releases stay reachable by identifier
CERT_WARN_DAYS = 30  # a signing certificate this close to expiry is logged as a warning when the API starts
SIGNED_CACHE_SIZE = 1024  # signed CAP documents kept (a few KB each); the least recently served go first
ASSETS = Path(__file__).parent / "public_page"
_env = Environment(loader=FileSystemLoader(ASSETS), autoescape=select_autoescape(["html"]), trim_blocks=True,
                   lstrip_blocks=True)
ExerciseQuery = Annotated[bool, Query(description="true: include exercise (演练) releases, marked DRILL")]
LangQuery = Annotated[str | None, Query(max_length=35, description="zh or en; else the cookie or Accept-Language")]


def sender_name(settings: Settings) -> LocalizedText:
    zh, _, en = settings.cap_sender_name.partition("|")
    return LocalizedText(zh=zh.strip() or settings.cap_sender, en=en.strip() or None)


def expires_at(release: Release, settings: Settings) -> datetime:
    assert release.published_at is not None
    return release.published_at if release.kind is ReleaseKind.all_clear else \
        release.published_at + timedelta(hours=settings.cap_expires_h)


def on_cap(release: Release) -> bool:
    """Published on the CAP channel (the feed, the documents and this page); SMS- or webhook-only ones are not."""
    return ReleaseChannel.cap in release.channels


def in_force(published: Sequence[Release], now: datetime, settings: Settings) -> list[Release]:
    """The latest CAP-channel release of each incident whose warning is in force, newest first: not expired, and the
    incident not all-cleared on any channel (an all-clear sent by SMS only still ends it)."""
    ended = {r.incident_id for r in published if r.kind is ReleaseKind.all_clear}
    latest: dict[str, Release] = {}
    for release in published:
        if release.state is ReleaseState.published and release.published_at is not None and on_cap(release):
            seen = latest.get(release.incident_id)
            if seen is None or (seen.published_at or now, seen.id) <= (release.published_at, release.id):
                latest[release.incident_id] = release
    current = [r for r in latest.values() if r.incident_id not in ended and expires_at(r, settings) > now]
    return sorted(current, key=lambda r: (r.published_at or now, r.id), reverse=True)


def colour_of(release: Release) -> str | None:
    """The warning colour the page shows: the release's, else the one its grade means (as the CAP intake gives
    it; none for social-security and other events)."""
    colour = release.warning_colour or DEFAULT_MAPPING.colour(release.grade, release.category)
    return colour.value if colour is not None else None


def _etag_matches(header: str, etag: str) -> bool:
    if header.strip() == "*":
        return True
    tags = [t.strip().removeprefix("W/") for t in header.split(",")]
    return etag in tags  # weak comparison, as RFC 9110 asks for If-None-Match


def cached(request: Request, body: bytes, media_type: str, last_modified: datetime | None, max_age: int,
           vary: str | None = None) -> Response:
    """The body with its validators, or 304 when the client's copy is current."""
    etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
    headers = {"ETag": etag, "Cache-Control": f"public, max-age={max_age}"}
    if vary:
        headers["Vary"] = vary
    if last_modified is not None:
        last_modified = last_modified.astimezone(UTC).replace(microsecond=0)
        headers["Last-Modified"] = format_datetime(last_modified, usegmt=True)
    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None:
        if _etag_matches(if_none_match, etag):
            return Response(status_code=304, headers=headers)
    elif last_modified is not None and (since := request.headers.get("if-modified-since")):
        try:
            when = parsedate_to_datetime(since)
        except (TypeError, ValueError, IndexError):
            when = None  # an unreadable date is ignored, as RFC 9110 says
        if when is not None and when.tzinfo is not None and last_modified <= when:
            return Response(status_code=304, headers=headers)
    return Response(body, media_type=media_type, headers=headers)


def _base(request: Request, settings: Settings) -> str:
    return (settings.public_url or str(request.base_url)).rstrip("/")


def _entry_id(sender: str, identifier: str) -> str:
    # Stable whatever host serves the feed: a reader keeps its read marks when the URL changes.
    return uuid.uuid5(uuid.NAMESPACE_URL, f"cap:{sender},{identifier}").urn


def _both(text: LocalizedText) -> str:
    return text.zh if not text.en or text.en == text.zh else f"{text.zh} / {text.en}"


def atom_feed(releases: Sequence[Release], settings: Settings, base: str) -> bytes:
    """Atom 1.0 (RFC 4287) of the releases given, newest first."""
    a = f"{{{ATOM_NS}}}"
    ordered = sorted((r for r in releases if r.published_at and r.cap_identifier),
                     key=lambda r: (r.published_at or datetime.min.replace(tzinfo=UTC), r.id), reverse=True)
    ordered = ordered[:FEED_LIMIT]
    feed = etree.Element(f"{a}feed", nsmap={None: ATOM_NS})
    feed.set("{http://www.w3.org/XML/1998/namespace}lang", "zh-CN")
    name = sender_name(settings)

    def sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str) -> etree._Element:
        el = etree.SubElement(parent, f"{a}{tag}", {k: xml_safe(v) for k, v in attrs.items()})
        if text is not None:
            el.text = xml_safe(text)
        return el

    sub(feed, "id", _entry_id(settings.cap_sender, "feed"))
    sub(feed, "title", _both(LocalizedText(zh=f"{name.zh} 预警信息", en=f"{name.en} public warnings" if name.en
                                           else None)))
    newest = ordered[0].published_at if ordered else datetime(1970, 1, 1, tzinfo=UTC)
    sub(feed, "updated", cap_time(newest))  # type: ignore[arg-type]
    sub(sub(feed, "author"), "name", _both(name))
    sub(feed, "link", rel="self", type="application/atom+xml", href=f"{base}/public/cap/feed.atom")
    sub(feed, "link", rel="alternate", type="text/html", href=f"{base}/public/")
    sub(feed, "generator", "Pingan")
    for release in ordered:
        assert release.published_at is not None and release.cap_identifier is not None
        entry = sub(feed, "entry")
        sub(entry, "id", _entry_id(settings.cap_sender, release.cap_identifier))
        marker = "【演练】[DRILL] " if release.is_exercise else ""
        sub(entry, "title", marker + _both(release.texts.headline))
        sub(entry, "updated", cap_time(release.published_at))
        sub(entry, "published", cap_time(release.published_at))
        sub(entry, "summary", _both(release.texts.description))
        sub(entry, "category", term=release.kind.value, label={"alert": "Alert", "update": "Update",
                                                               "all_clear": "Cancel"}[release.kind.value])
        sub(entry, "link", rel="alternate", type=CAP_MEDIA_TYPE,
            href=f"{base}/public/cap/{release.cap_identifier}.xml")
    return etree.tostring(feed, xml_declaration=True, encoding="UTF-8", pretty_print=True)


class SignedDocuments:
    """Signed CAP documents by (identifier, hash of the unsigned body): a published document never changes, so it is
    signed once (an EC signature is not even deterministic, which would change the ETag on every request)."""

    def __init__(self, signer: "CapSigner", size: int = SIGNED_CACHE_SIZE) -> None:
        self.signer = signer
        self.size = size
        self._docs: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()  # FastAPI runs these sync routes on a thread pool

    def get(self, identifier: str, body: bytes) -> bytes:
        key = (identifier, hashlib.sha256(body).hexdigest())
        with self._lock:
            if (signed := self._docs.get(key)) is not None:
                self._docs.move_to_end(key)
                return signed
        signed = self.signer.sign(body)
        with self._lock:
            self._docs[key] = signed
            while len(self._docs) > self.size:
                self._docs.popitem(last=False)
        return signed


def _lang(request: Request, asked: str | None) -> str:
    if asked:
        return normal_lang(asked)
    cookie = request.cookies.get(LANG_COOKIE)
    if cookie in LANGS:
        return str(cookie)
    return normal_lang(request.headers.get("accept-language"))


def public_router(settings: Settings, store: Store) -> APIRouter:
    router = APIRouter(tags=["public"])
    tz = ZoneInfo(settings.timezone)
    signed = SignedDocuments(settings.cap_signer) if settings.cap_signer is not None else None
    if settings.cap_signer is not None:
        left = settings.cap_signer.not_after - datetime.now(UTC)
        if left < timedelta(days=CERT_WARN_DAYS):
            # Receivers refuse alerts signed with an expired certificate; renew it and restart before then.
            log.warning("the CAP signing certificate (PINGAN_CAP_SIGNING_CERT, %s) expires on %s, in %d days",
                        settings.cap_signer.subject, settings.cap_signer.not_after.isoformat(), left.days)

    @router.get("/public/cap/feed.atom", response_class=Response,
                responses={200: {"content": {"application/atom+xml": {}}, "description": "Atom 1.0"},
                           304: {"description": "Not modified (If-None-Match)"}})
    def cap_feed(request: Request, exercise: ExerciseQuery = False) -> Response:
        """Published releases, newest first, each linking to its CAP 1.2 document. No sign-in."""
        published = [r for r in release_store.list_published(store, include_exercise=exercise) if on_cap(r)]
        body = atom_feed(published, settings, _base(request, settings))
        newest = max((r.published_at for r in published if r.published_at), default=None)
        return cached(request, body, ATOM_MEDIA_TYPE, newest, FEED_MAX_AGE_S)

    @router.get("/public/cap/{identifier}.xml", response_class=Response,
                responses={200: {"content": {CAP_MEDIA_TYPE: {}}, "description": "A CAP 1.2 alert"},
                           304: {"description": "Not modified (If-None-Match)"},
                           404: {"description": "No published release has this identifier"}})
    def cap_document(request: Request, identifier: str) -> Response:
        """One published release as a CAP 1.2 alert, signed (an enveloped XML Signature with the office's certificate
        chain) when the office configured a signing key. No sign-in."""
        release = release_store.get_by_cap_identifier(store, identifier)
        if release is None or release.state is not ReleaseState.published or release.published_at is None \
                or not on_cap(release):
            raise HTTPException(404, f"no published CAP alert has identifier {identifier!r}")
        published_at = release.published_at
        # The releases it follows (the workflow names them; else every earlier one), as far as CAP readers saw them.
        named = set(release.references)
        earlier = [r for r in release_store.list_for_incident(store, release.incident_id)
                   if r.state is ReleaseState.published and r.published_at is not None and on_cap(r)
                   and r.cap_identifier != release.cap_identifier
                   and (r.id in named if named else (r.published_at, r.id) < (published_at, release.id))]
        body = release_to_cap(release, sender=settings.cap_sender, earlier=earlier,
                              sender_name=sender_name(settings), tz=tz, expires_h=settings.cap_expires_h,
                              web=f"{_base(request, settings)}/public/")
        if signed is not None:
            body = signed.get(identifier, body)
        return cached(request, body, CAP_MEDIA_TYPE, published_at, DOCUMENT_MAX_AGE_S)

    @router.get("/public/", response_class=Response,
                responses={200: {"content": {"text/html": {}}, "description": "The warnings in force"},
                           304: {"description": "Not modified (If-None-Match)"}})
    def public_page(request: Request, lang: LangQuery = None) -> Response:
        """The warnings in force, zh-CN or en, for a phone. No sign-in, no script."""
        chosen = _lang(request, lang)
        now = datetime.now(UTC)
        # Older releases are expired, and so are the alerts they end: the window keeps the page's read small. Two
        # lifetimes, so that the expiries that changed the page lately are seen for Last-Modified.
        published = release_store.list_published(store, since=now - timedelta(hours=2 * settings.cap_expires_h))
        current = in_force(published, now, settings)
        # What changed the page last: a publication, or an expiry that took a warning off it.
        changes = [r.published_at for r in published if r.published_at] + \
            [e for r in published if r.published_at and (e := expires_at(r, settings)) <= now]
        base = _base(request, settings)

        def local(when: datetime) -> str:
            return when.astimezone(tz).strftime("%Y-%m-%d %H:%M")

        html = _env.get_template("public.html").render(
            lang=chosen, other="en" if chosen == "zh" else "zh", warnings=current, office=sender_name(settings),
            t=lambda key, **f: translate(chosen, key, **f), term=lambda g, v: term(chosen, g, v),
            local=local, expires=lambda r: expires_at(r, settings), zone=tz.key, base=base, colour_of=colour_of)
        response = cached(request, html.encode(), "text/html; charset=utf-8", max(changes, default=None),
                          PAGE_MAX_AGE_S, vary="Accept-Language, Cookie")
        response.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
            "frame-ancestors 'none'")
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @router.get("/public/static/public.css", include_in_schema=False)
    def stylesheet() -> FileResponse:
        return FileResponse(ASSETS / "public.css", media_type="text/css",
                            headers={"Cache-Control": f"public, max-age={PAGE_MAX_AGE_S * 60}"})

    return router
