"""Public SMS subscriptions on the Twilio SMS webhook (issue 17): `订阅 唐家湾` / `SUB Tangjiawan` and `退订`, `TD`,
`STOP`, `UNSUB`, `取消订阅`, taken before a text is read as a duty command or a citizen's report.

The decision is handlers/incidents/subscriptions.py, the record store/subscriptions.py; this answers in TwiML in the
sender's language. An unsubscription works from any number, always, and needs nothing else of the text.
"""

import functools
import logging
from pathlib import Path

from twilio.twiml.messaging_response import MessagingResponse

from pingan.handlers.incidents.subscriptions import Keyword, Lang, is_subscription, reply_text, subscribe_reply
from pingan.schemas.adapters.areas import AREAS_FILE
from pingan.schemas.areas import District, district_from_geojson
from pingan.store.subscriptions import SubscriptionStore
from pingan.web.intake import Intake

log = logging.getLogger("pingan.intake")


@functools.lru_cache(maxsize=4)
def district_of(path: Path | None) -> District:
    """The district's areas (PINGAN_DISTRICT_AREAS, or the shipped file), read once per path."""
    path = path or AREAS_FILE
    return district_from_geojson(path.read_text(encoding="utf-8"), str(path))


def _twiml(text: str | None) -> str:
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


def _masked(phone: str) -> str:
    return phone[:-4] + "****" if len(phone) > 6 else "****"


def subscription_reply(intake: Intake, form: dict[str, str], keyword: Keyword, lang: Lang) -> str | None:
    """Record the (un)subscription of the sender and answer it; None when the text is a report after all. A
    re-posted message (same MessageSid) records nothing again and gets the same answer."""
    district = district_of(intake.settings.district_areas)
    if not is_subscription(district, keyword):
        return None
    subs = SubscriptionStore(intake.store)
    phone = form.get("From", "").strip()
    sid = form.get("MessageSid") or None
    if keyword.action == "unsubscribe":
        # TD / STOP / UNSUB carry no language of their own: answer in the one the number subscribed in.
        if form.get("Body", "").isascii():
            lang = "zh" if subs.lang_of(phone) == "zh" else lang
        if phone:
            subs.unsubscribe_all(phone, lang, sid)
        log.info("intake hotline_sms: %s unsubscribed from every area", _masked(phone))
        # Twilio answers its own opt-out words (STOP, CANCEL…) and blocks the number itself: a second answer
        # of ours would be dropped, or be one message too many.
        return _twiml(None if keyword.twilio_opt_out else reply_text("unsubscribed", lang))
    area, text = subscribe_reply(district, keyword, lang)
    if area is not None and phone:
        subs.subscribe(phone, area.code, lang, sid)
        log.info("intake hotline_sms: %s subscribed to %s", _masked(phone), area.code)
    return _twiml(text)
