"""Twilio inbound SMS and voice (IVR) webhooks to IntakeItems, and the TwiML we answer with. Pure: a decoded form
in, IntakeItems and XML out; the web layer checks Twilio's request signature before calling us.

Citizen reports are unverified, so they come in at grade IV; the duty room regrades. What a text says is read by
schemas/adapters/sms_classifier.py (jieba and the lexicon in lexicon/sms.yaml). dedup_key is left to
IncidentReport's automatic key (category, subtype, hazard, area or title), and source_key makes Twilio's retries
of one MessageSid/CallSid idempotent.
"""

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from pydantic import ValidationError
from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import Gather, VoiceResponse

from pingan.schemas.adapters.areas import DEFAULT_AREAS, Area, AreaTable
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.adapters.sms_classifier import UNCLASSIFIED_CATEGORY, UNCLASSIFIED_SUBTYPE, classify
from pingan.schemas.adapters.sms_facts import casualties
from pingan.schemas.adapters.sms_lexicon import DEFAULT_LEXICON, Lexicon
from pingan.schemas.events import IntakeItem, RawKind
from pingan.schemas.incident import Attachment, IncidentReport, Location, Reporter
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Source, Subtype

# Re-exported: callers knew the area table from here before it moved to areas.py.
__all__ = ["DEFAULT_AREAS", "DRILL_FIELD", "Area", "AreaTable", "as_exercise", "detect_lang", "sms_to_item",
           "voice_choice", "voice_recording"]

Lang = Literal["zh", "en"]
Command = Literal["stop", "start", "help"]

# Any CJK ideograph, CJK punctuation or full-width form means the sender writes Chinese.
_CJK = re.compile("[\u3000-\u303f\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff00-\uffef\U00020000-\U0002ffff]")
# Twilio's default opt-out / opt-in / help keywords (whole body, case-insensitive). START/YES/UNSTOP are answered by
# Twilio itself; treating them as reports would open a junk incident for every "YES".
_COMMANDS: dict[str, Command] = {
    **dict.fromkeys(["stop", "stopall", "unsubscribe", "cancel", "end", "quit", "revoke", "optout"], "stop"),
    **dict.fromkeys(["start", "yes", "unstop"], "start"),
    **dict.fromkeys(["help", "info", "帮助"], "help"),
}
_TITLE_CHARS = 60
# A form field only a drill sends (`pingan drill run`): the drill run the text or call belongs to. The
# X-Twilio-Signature covers it like every other field, so only someone holding the auth token can mark a message a
# drill's; the web layer then takes it as an exercise of that run if the run is registered and not ended.
DRILL_FIELD = "PinganDrillRun"
DRILL_INCIDENT_HEADER = "X-Pingan-Incident"  # on a drill inject's answer: the incident it made (Twilio ignores it)
_MAX_MEDIA = 10  # Twilio delivers at most 10 media per message
# Field limits of the models (schemas/incident.py, schemas/events.py) that a signed form can still exceed.
_PHONE_MAX = 32  # Reporter.phone
_URL_MAX = 2_000  # Attachment.url
_SOURCE_KEY_MAX = 300  # IntakeItem.source_key
_RAW_MAX = 256  # what a label keeps of a raw value


def detect_lang(text: str) -> Lang:
    return "zh" if _CJK.search(text) else "en"


@dataclass(frozen=True)
class SmsOutcome:
    """A report (item set) or a keyword command (command set), and the language to answer in."""

    item: IntakeItem | None
    command: Command | None
    lang: Lang


@dataclass(frozen=True)
class VoiceOutcome:
    """The TwiML to answer Twilio with, and the report the call produced so far (None while the caller chooses)."""

    item: IntakeItem | None
    twiml: str


def _required(form: Mapping[str, str], name: str) -> str:
    value = form.get(name)
    if value is None or (name != "Body" and not value.strip()):
        raise IntakeError(f"missing {name}", field=name, source="form")
    return value.strip()


def _caller(raw: str | None) -> tuple[Reporter | None, str, dict[str, str]]:
    """The sender as the report's reporter, as shown in a title, and labels. Twilio's From is E.164 for phones but
    may be `whatsapp:+…`, `client:…`, a SIP URI or anything else a signed request carries: one longer than the phone
    field is kept whole (to _RAW_MAX) in the `twilio_from` label, and the reporter has no phone, rather than the
    citizen's report being refused or lost over the sender's format."""
    value = (raw or "").strip()
    if not value:
        return None, "", {}
    if len(value) <= _PHONE_MAX:
        return Reporter(phone=value), value, {}
    return None, value[:_PHONE_MAX] + "…", {"twilio_from": value[:_RAW_MAX]}


def _media(kind: str, url: str, data: dict[str, object]) -> Attachment | None:
    """An attachment, or None for a URL longer than an attachment holds (nobody could open a cut one)."""
    return Attachment(kind=kind, url=url, data=data) if len(url) <= _URL_MAX else None


def _source_key(prefix: str, sid: str) -> str:
    # Twilio's SIDs are 34 characters; a longer one still makes one key per message, within IntakeItem's limit.
    key = prefix + sid
    return key if len(key) <= _SOURCE_KEY_MAX else prefix + "sha256:" + hashlib.sha256(sid.encode()).hexdigest()


def _item(build: dict[str, object], source_key: str) -> IntakeItem:
    try:
        return IntakeItem(kind=RawKind.report, report=IncidentReport.model_validate(build), source_key=source_key)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise IntakeError(first["msg"], field=".".join(str(p) for p in first["loc"]) or None, source="form") from None


def _labels(body: str, lexicon: Lexicon, areas: AreaTable) -> tuple[dict[str, object], dict[str, str], str]:
    """The classifier's reading of a text as report fields and labels, and the cleaned text."""
    c = classify(body, lexicon, areas)
    labels: dict[str, str] = {}
    if c.unclassified:
        labels["pingan_unclassified"] = "true"
        if c.hint:
            labels["sms_hint"] = c.hint  # a lone weak word (火, 烟…): for the duty room, not a classification
    else:
        labels["sms_keyword"], labels["sms_entry"] = c.terms[0], c.entry or ""
    for key, on in (("sms_resolved", c.resolved), ("sms_retracted", c.retracted)):
        if on:
            labels[key] = "true"
    if c.negated:
        labels["sms_negated"] = ",".join(c.negated)[:200]
    if c.noise:
        labels["sms_noise"] = str(c.noise)  # control characters stripped: the message may be garbled
    labels.update({fact: str(n) for fact, n in c.facts.items()})
    if (hurt := casualties(c.facts)) is not None:
        labels["casualties"] = str(hurt)
    if c.grade_hint:
        labels["grade_hint"] = c.grade_hint.value
    fields: dict[str, object] = {
        "category": c.category, "subtype": c.subtype, "hazard": c.hazard,
        "location": Location(area_code=c.area.code, area_name=c.area.name) if c.area else Location()}
    return fields, labels, c.text


def sms_to_item(form: Mapping[str, str], keywords: Lexicon = DEFAULT_LEXICON,
                areas: AreaTable = DEFAULT_AREAS) -> SmsOutcome:
    """A Twilio inbound-SMS webhook form to a report, or to a STOP/START/HELP command. `keywords` is the SMS
    lexicon (schemas/adapters/sms_classifier.py reads the text with it)."""
    sid, sender, body = _required(form, "MessageSid"), _required(form, "From"), _required(form, "Body")
    lang = detect_lang(body) if body else "zh"
    command = _COMMANDS.get(body.casefold())
    try:
        num_media = int(form.get("NumMedia") or 0)
    except ValueError:
        raise IntakeError("NumMedia is not a number", field="NumMedia", source="form") from None
    urls = [(i, url) for i in range(min(max(num_media, 0), _MAX_MEDIA)) if (url := form.get(f"MediaUrl{i}"))]
    media = [a for i, url in urls
             if (a := _media("media", url, {"content_type": form.get(f"MediaContentType{i}", "")[:_RAW_MAX]}))]
    if command or (not body and not urls):
        return SmsOutcome(item=None, command=command or "help", lang=lang)  # an empty text gets the usage

    fields, labels, text = _labels(body, keywords, areas) if body else (
        {"category": UNCLASSIFIED_CATEGORY, "subtype": UNCLASSIFIED_SUBTYPE}, {"pingan_unclassified": "true"}, "")
    # Title and description carry the cleaned text: control characters (ANSI escapes…) have no place on a console.
    flat = " ".join(text.split())
    if not flat:
        title = ("彩信报告" if lang == "zh" else "Picture message") if urls else "无法识别的短信 / unreadable text"
    else:
        title = flat if len(flat) <= _TITLE_CHARS else flat[:_TITLE_CHARS] + "…"
    reporter, _, from_labels = _caller(sender)
    if len(media) < len(urls):
        from_labels["twilio_media_dropped"] = str(len(urls) - len(media))
    item = _item({
        "source": Source.hotline_sms, "grade": Grade.IV, "title": title, "description": text[:20_000],
        "reporter": reporter,
        "labels": {"twilio_message_sid": sid[:_RAW_MAX], "sms_lang": lang, **labels, **from_labels},
        "attachments": media, **fields,
    }, _source_key("twilio:sms:", sid))
    return SmsOutcome(item=item, command=None, lang=lang)


# --- SMS replies.

_SMS = {
    "zh": {
        "ok": "【平安】已收到您的报告，编号 {ref}。如有危险请立即拨打 119/110/120。",
        "help": "【平安】区应急办短信报警：请发送发生了什么和在哪里，例如“东湖街道幸福小区3栋冒烟”。"
                "紧急情况请直接拨打 119/110/120。回复 STOP 退订。",
    },
    "en": {
        "ok": "[Pingan] Report received, reference {ref}. If you are in danger, call 119 (fire), 110 (police) "
              "or 120 (ambulance) now.",
        "help": "[Pingan] District emergency office. Text what happened and where, e.g. \"smoke at Donghu Street, "
                "block 3\". In an emergency call 119/110/120. Reply STOP to opt out.",
    },
}


def _message(text: str | None) -> str:
    response = MessagingResponse()
    if text:
        response.message(text)
    return str(response)


def sms_reply(lang: Lang, reference: str) -> str:
    """Confirms an accepted report with its reference number."""
    return _message(_SMS[lang]["ok"].format(ref=reference))


def sms_help_reply(lang: Lang) -> str:
    return _message(_SMS[lang]["help"])


def sms_stop_reply(lang: Lang) -> str:
    """An empty <Response/>: for STOP (and START) Twilio's opt-out handling answers the sender itself and blocks
    further messages to them; a reply of ours would be a second message, or be dropped after the opt-out."""
    del lang  # same answer in every language; kept for a uniform signature
    return _message(None)


# --- Voice IVR.

# Twilio <Say> language and voice per language. "alice" speaks zh-CN and en-US; an account may swap in Polly.* or
# Google.* voices here (their language codes differ, e.g. cmn-CN), which is why it is one table.
SAY_VOICES: dict[Lang, tuple[str, str]] = {"zh": ("zh-CN", "alice"), "en": ("en-US", "alice")}
GATHER_TIMEOUT_S = 8
RECORD_MAX_S = 120

_A, _N, _H, _S = Category.accident_disaster, Category.natural_disaster, Category.public_health, Category.social_security
_IVR: dict[str, tuple[str, str, Category, Subtype]] = {
    "1": ("火灾", "fire", _A, Subtype.fire),
    # Flood or typhoon: what callers live through is the water, so flood_drought, with no hazard guessed.
    "2": ("洪水或台风", "flood or typhoon", _N, Subtype.flood_drought),
    "3": ("化学品泄漏", "chemical leak", _A, Subtype.hazardous_chemicals),
    "4": ("医疗或疫情", "medical or epidemic", _H, Subtype.infectious_disease),
    "5": ("治安事件", "public order", _S, Subtype.mass_incident),
}
_VOICE = {
    "zh": {
        "menu": "平安应急热线。如有生命危险，请挂机拨打119、110或120。火灾请按1，洪水或台风请按2，化学品泄漏请按3，"
                "医疗或疫情请按4，治安事件请按5，留言请按0。",
        "invalid": "输入无效。",
        "ok": "已收到您的{what}报警，值班人员将尽快处理。如有生命危险，请立即拨打119、110或120。再见。",
        "record": "请在提示音后说明发生了什么和具体地点，说完请按井号键。",
        "no_audio": "没有录到留言。再见。",
        "thanks": "已收到您的留言，值班人员将尽快处理。再见。",
    },
    "en": {
        "menu": "Pingan emergency line. If a life is in danger, hang up and dial 119, 110 or 120. Press 1 for fire, "
                "2 for flood or typhoon, 3 for a chemical leak, 4 for medical or epidemic, 5 for public order, "
                "or 0 to leave a recorded message.",
        "invalid": "That is not a valid choice.",
        "ok": "Your {what} report has been received and the duty officer will handle it. If a life is in danger, "
              "dial 119, 110 or 120 now. Goodbye.",
        "record": "After the beep, say what happened and exactly where, then press the pound key.",
        "no_audio": "No message was recorded. Goodbye.",
        "thanks": "Your message has been received and the duty officer will handle it. Goodbye.",
    },
}


def _say(parent: VoiceResponse | Gather, key: str, langs: tuple[Lang, ...], what: dict[str, str] | None = None) -> None:
    for lang in langs:
        language, voice = SAY_VOICES[lang]
        text = _VOICE[lang][key].format(what=what[lang]) if what else _VOICE[lang][key]
        parent.say(text, language=language, voice=voice)


def _langs(lang: Lang | None) -> tuple[Lang, ...]:
    if lang is None:
        return ("zh", "en")
    if lang not in _VOICE:
        raise ValueError(f"unknown language {lang!r}")
    return (lang,)


def _record(response: VoiceResponse, record_action_url: str) -> None:
    _say(response, "record", ("zh", "en"))
    response.record(action=record_action_url, method="POST", max_length=RECORD_MAX_S, play_beep=True,
                    finish_on_key="#", timeout=10)
    # Twilio goes on to the next verb when nothing was recorded.
    _say(response, "no_audio", ("zh", "en"))
    response.hangup()


def voice_menu(action_url: str, lang: Lang | None = None) -> str:
    """The IVR menu: one digit, posted to `action_url` (voice_choice). With no key pressed the call is redirected
    to `action_url` without Digits, and voice_choice offers the menu once more before falling back to a message."""
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action_url, method="POST", timeout=GATHER_TIMEOUT_S)
    _say(gather, "menu", _langs(lang))
    response.append(gather)
    response.redirect(action_url, method="POST")
    return str(response)


def _menu_again(record_action_url: str, invalid: bool) -> str:
    response = VoiceResponse()
    if invalid:
        _say(response, "invalid", ("zh", "en"))
    # No action: Twilio posts the digit to the URL of this document, i.e. back to voice_choice.
    gather = Gather(num_digits=1, method="POST", timeout=GATHER_TIMEOUT_S)
    _say(gather, "menu", ("zh", "en"))
    response.append(gather)
    # A caller who stays silent twice may be unable to speak freely: record rather than loop or hang up.
    _record(response, record_action_url)
    return str(response)


def voice_choice(form: Mapping[str, str], record_action_url: str) -> VoiceOutcome:
    """The Gather callback. 1..5 report at once; 0 records a message (item comes with voice_recording); no digit or
    an invalid one offers the menu again."""
    call_sid, caller = _required(form, "CallSid"), _required(form, "From")
    digits = (form.get("Digits") or "").strip()
    if digits == "0":
        response = VoiceResponse()
        _record(response, record_action_url)
        return VoiceOutcome(item=None, twiml=str(response))
    if digits not in _IVR:
        return VoiceOutcome(item=None, twiml=_menu_again(record_action_url, invalid=bool(digits)))
    zh, en, category, subtype = _IVR[digits]
    reporter, shown, from_labels = _caller(caller)
    item = _item({
        "source": Source.hotline_voice, "category": category, "subtype": subtype, "grade": Grade.IV,
        # The caller's number in the title keeps the automatic dedup_key apart for different callers.
        "title": f"电话报警：{zh}（{shown}）", "description": f"IVR choice {digits}: {en}",
        "reporter": reporter, "labels": {"twilio_call_sid": call_sid[:_RAW_MAX], "ivr_digit": digits, **from_labels},
    }, _source_key("twilio:voice:", call_sid))
    response = VoiceResponse()
    _say(response, "ok", ("zh", "en"), what={"zh": zh, "en": en})
    response.hangup()
    return VoiceOutcome(item=item, twiml=str(response))


def voice_recording(form: Mapping[str, str], keywords: Lexicon = DEFAULT_LEXICON) -> VoiceOutcome:
    """The <Record> action callback: the message as an unclassified report with the recording attached, until
    someone listens to it (nobody has read what the caller said)."""
    del keywords  # nothing to classify yet: a recording has no text
    call_sid, url = _required(form, "CallSid"), _required(form, "RecordingUrl")
    reporter, shown, from_labels = _caller(form.get("From"))
    labels = {"twilio_call_sid": call_sid[:_RAW_MAX], "pingan_unclassified": "true", **from_labels}
    if form.get("RecordingSid"):
        labels["twilio_recording_sid"] = form["RecordingSid"][:_RAW_MAX]
    data = {k: form[k][:_RAW_MAX] for k in ("RecordingSid", "RecordingDuration") if form.get(k)}
    recording = _media("recording", url, data)
    if recording is None:
        labels["twilio_recording_url"] = url[:_RAW_MAX] + "…"  # the start of it, for whoever looks it up at Twilio
    item = _item({
        "source": Source.hotline_voice, "category": UNCLASSIFIED_CATEGORY, "subtype": UNCLASSIFIED_SUBTYPE,
        "grade": Grade.IV, "title": f"电话留言（{shown or '未知号码'}）",
        "description": "Voice message; listen to the recording.",
        "reporter": reporter, "labels": labels, "attachments": [recording] if recording else [],
    }, _source_key("twilio:voice:", call_sid + ":rec"))
    response = VoiceResponse()
    _say(response, "thanks", ("zh", "en"))
    response.hangup()
    return VoiceOutcome(item=item, twiml=str(response))


def as_exercise(item: IntakeItem, run_id: str) -> IntakeItem:
    """A drill's text or call: an exercise of run `run_id` (the notifier's sandbox rule reads the label), kept apart
    from other runs' reports of the same thing by its dedup key."""
    assert item.report is not None
    report = item.report
    dedup = f"{report.effective_dedup_key()}:drill-{run_id}"[-256:]
    changed = IncidentReport.model_validate({**report.model_dump(), "status": IncidentStatus.exercise,
                                             "dedup_key": dedup, "labels": {**report.labels, "drill_run": run_id}})
    return item.model_copy(update={"report": changed})
