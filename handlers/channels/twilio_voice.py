"""Twilio voice channel: calls the recipient, reads the message and takes a keypress to acknowledge.

The call carries its TwiML inline (the `twiml=` parameter of Calls.create), so Twilio needs nothing from us to
speak the message; only the keypress comes back, to {public_url}/v1/intake/twilio/voice/ack?key=<idempotency key>,
where keypress_command() maps the digit. Never raises: every problem is a SendResult.
"""

from datetime import datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import requests
from twilio.base.exceptions import TwilioException, TwilioRestException, TwilioServiceException
from twilio.twiml.voice_response import Gather, VoiceResponse

from pingan.handlers.channels.twilio_sms import (
    DEFAULT_POOL_SIZE,
    E164,
    RECONCILE_LIMIT,
    RECONCILE_SLACK,
    _rest_failure,
    build_client,
)
from pingan.schemas.delivery import ReconcileOutcome, ReconcileResult, SendOutcome, SendResult
from pingan.schemas.notification import Notification

if TYPE_CHECKING:
    from pingan.settings import Settings

ACK_PATH = "/v1/intake/twilio/voice/ack"
SAY_LANGUAGE: dict[str, str] = {"zh": "zh-CN", "en": "en-US"}
INSTRUCTIONS: dict[str, str] = {
    "zh": "按4确认，按5升级，按6关闭。",
    "en": "Press 4 to acknowledge, 5 to escalate, 6 to close.",
}
GOODBYE: dict[str, str] = {"zh": "未收到按键，再见。", "en": "No key was pressed. Goodbye."}
KEYPRESS_COMMANDS: dict[str, str] = {"4": "acknowledge", "5": "escalate", "6": "close"}
GATHER_TIMEOUT_S = 8  # a person woken by the call needs a moment after the menu
TWIML_MAX_CHARS = 4000  # Twilio's documented limit for the Calls `Twiml` parameter


def keypress_command(digits: str) -> str | None:
    """The command a <Gather> digit stands for: 4 acknowledge, 5 escalate, 6 close; anything else None."""
    return KEYPRESS_COMMANDS.get(digits.strip()) if digits else None


def ack_url(public_url: str, idempotency_key: str) -> str:
    return f"{public_url.rstrip('/')}{ACK_PATH}?{urlencode({'key': idempotency_key})}"


def voice_ack_twiml(text: str, lang: str, action_url: str) -> str:
    """The call's TwiML: the message twice in the recipient's language and the key menu inside one <Gather>
    (so a key press interrupts at once), then goodbye when no key came."""
    if lang not in SAY_LANGUAGE:
        raise ValueError(f"unknown language {lang!r}")
    other = "en" if lang == "zh" else "zh"
    response = VoiceResponse()
    gather = Gather(num_digits=1, action=action_url, method="POST", timeout=GATHER_TIMEOUT_S)
    # loop=2 rather than two <Say>s: the message may be 1600 characters and the TwiML must stay under 4000.
    gather.say(" ".join(text.split()), language=SAY_LANGUAGE[lang], loop=2)
    # The menu in both languages: a wrong `lang` in the directory must not leave someone unable to acknowledge.
    for menu_lang in (lang, other):
        gather.say(INSTRUCTIONS[menu_lang], language=SAY_LANGUAGE[menu_lang])
    response.append(gather)
    # Twilio reaches this only when the Gather timed out without a digit; a digit goes to action_url instead.
    response.say(GOODBYE[lang], language=SAY_LANGUAGE[lang])
    return str(response)


class TwilioVoiceChannel:
    name = "twilio_voice"
    # reconcile finds any call to the person since the intent: a call in doubt is not placed again (it may
    # have been another intent's call, which errs towards not ringing twice).
    guarantee = "at_most_once"

    def __init__(self, account_sid: str, auth_token: str, from_number: str, public_url: str,
                 api_base_url: str | None = None, timeout_s: float = 10, status_callback: str | None = None,
                 pool_size: int = DEFAULT_POOL_SIZE) -> None:
        self.from_number = from_number
        self.sender = from_number
        self.public_url = public_url.rstrip("/")
        self.status_callback = status_callback
        # As in twilio_sms: one client per channel over a pooled session; Calls live on the "api" Domain.
        self.client, self._http = build_client(account_sid, auth_token, api_base_url, timeout_s, pool_size)

    def send(self, notification: Notification) -> SendResult:
        n = notification
        to = n.recipient.address
        if not E164.match(to):
            return SendResult(SendOutcome.permanent_failure, detail=f"recipient address {to!r} is not E.164")
        twiml = voice_ack_twiml(n.text, n.recipient.lang, ack_url(self.public_url, n.idempotency_key))
        if len(twiml) > TWIML_MAX_CHARS:
            # Twilio would refuse it with a 400 anyway; cutting an emergency message short silently is worse
            # than a visible failure that lets the plan fall back to another channel.
            return SendResult(SendOutcome.permanent_failure,
                              detail=f"call TwiML is {len(twiml)} characters, Twilio allows {TWIML_MAX_CHARS}")
        kwargs: dict[str, Any] = {"to": to, "from_": self.from_number, "twiml": twiml}
        if self.status_callback:
            kwargs["status_callback"] = self.status_callback
        try:
            call = self.client.calls.create(**kwargs)
        except (TwilioRestException, TwilioServiceException) as e:
            # 429/5xx transient (429 throttled, with its Retry-After); other 4xx (21215, 21217...) permanent
            return _rest_failure(e, self._http.last_header("Retry-After"))
        except (requests.RequestException, TwilioException) as e:
            # As for SMS: a read timeout may hide a call Twilio placed, so a retry can ring twice. Ringing twice
            # is the lesser harm for an emergency call than not ringing at all.
            return SendResult(SendOutcome.transient_failure, detail=f"twilio unreachable: {type(e).__name__}: {e}")
        except Exception as e:  # noqa: BLE001 - the contract is "never raise"
            # Unexpected (e.g. a garbled 2xx): we cannot tell whether it rang, so do not retry.
            return SendResult(SendOutcome.permanent_failure,
                              detail=f"twilio client error: {type(e).__name__}: {e}")
        return SendResult(SendOutcome.accepted, provider_id=call.sid, extra={"status": str(call.status)})

    def reconcile(self, notification: Notification) -> ReconcileResult:
        """Any call from our number to the recipient since the notification was created counts as this one.

        Twilio's Call resource does not return the TwiML it was created with, so unlike SMS the message text
        cannot be matched: another notification's call to the same person in that window also reads as "sent".
        That errs towards not calling again, which is what at-most-once asks for.
        """
        n = notification
        if not E164.match(n.recipient.address):
            return ReconcileResult(ReconcileOutcome.not_sent, detail="not E.164: never sent to Twilio")
        since = n.created_at - RECONCILE_SLACK
        try:
            sid = self._find(n.recipient.address, since)
        except Exception as e:  # noqa: BLE001 - any failure to look means we cannot tell
            return ReconcileResult(ReconcileOutcome.unknown, detail=f"twilio call list failed: {e!r}")
        if sid is None:
            return ReconcileResult(ReconcileOutcome.not_sent, detail="no call to the recipient at twilio")
        return ReconcileResult(ReconcileOutcome.sent, provider_id=sid,
                               detail="a call to the recipient exists (its text cannot be checked)")

    def _find(self, to: str, since: datetime) -> str | None:
        calls = self.client.calls
        # Twilio documents StartTime as a date filter, so the time of day is checked here as well.
        for c in calls.list(to=to, from_=self.from_number, start_time_after=since, limit=RECONCILE_LIMIT):
            if c.start_time is not None and c.start_time >= since:
                return c.sid
        # A call still queued has no start_time, so the filter above misses it: look at recent ones too.
        for c in calls.list(to=to, from_=self.from_number, limit=RECONCILE_LIMIT):
            if c.start_time is None and (c.date_created is None or c.date_created >= since):
                return c.sid
        return None


def twilio_voice_from_settings(settings: "Settings") -> TwilioVoiceChannel | None:
    """The configured channel, or None unless the SID, token, From number and public URL are all set: without a
    public URL Twilio could not report the keypress, and an unacknowledgeable call would only escalate."""
    if not (settings.twilio_account_sid and settings.twilio_auth_token and settings.twilio_from_number
            and settings.public_url):
        return None
    return TwilioVoiceChannel(settings.twilio_account_sid, settings.twilio_auth_token, settings.twilio_from_number,
                              public_url=settings.public_url, api_base_url=settings.twilio_api_base_url,
                              pool_size=settings.notify_limit("twilio_voice"))
