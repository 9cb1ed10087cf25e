"""A drill's injects through the stack's real intake routes other than JSON reports and CAP (core/drill_runner.py
sends those): an Alertmanager webhook with the alertmanager intake token, and Twilio's SMS and voice webhooks signed
as Twilio signs them (X-Twilio-Signature: HMAC-SHA1 with the stack's auth token over its public URL and the form).

Each comes in as an exercise of the run: the webhook alert carries `pingan_status: exercise` and a `drill_run`
label; a text or call carries the run in a signed form field of its own (schemas/adapters/twilio_forms.DRILL_FIELD),
which the stack honours only for a registered, running drill run.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import datetime

import httpx
from twilio.request_validator import RequestValidator

from pingan.handlers.drills.injects import alertmanager_webhook, twilio_sms_form, twilio_voice_forms
from pingan.schemas.adapters.twilio_forms import DRILL_INCIDENT_HEADER
from pingan.schemas.drill import Inject

TWILIO_BASE = "/v1/intake/twilio"
_REF = re.compile(r"INC-[0-9A-Z]{10}")


@dataclass(frozen=True)
class TwilioSigner:
    """What the stack checks Twilio's signature with: its auth token and the public URL Twilio calls."""

    auth_token: str
    public_url: str
    account_sid: str = "AC" + "d" * 32  # a drill's own: Twilio's real account never sends a drill field
    hotline: str = "+8675612345"  # the number the citizens text and call (To)

    def sign(self, path: str, form: dict[str, str]) -> str:
        return str(RequestValidator(self.auth_token).compute_signature(self.public_url.rstrip("/") + path, form))


def twilio_signer(auth_token: str | None, public_url: str | None) -> TwilioSigner | None:
    """A signer when the stack's Twilio auth token is known, else None (then sms and voice injects cannot run)."""
    return TwilioSigner(auth_token, public_url) if auth_token and public_url else None


def route_problem(injects: list[Inject], tokens: dict[str, str], twilio: TwilioSigner | None) -> str | None:
    """Why some of these injects cannot be sent with these credentials (they are skipped, and the run's log says
    so), or None."""
    routes = {i.route for i in injects}
    if routes & {"sms", "voice"} and twilio is None:
        return ("sms/voice injects are skipped: they are signed with the stack's Twilio auth token; set "
                "PINGAN_TWILIO_AUTH_TOKEN (and PINGAN_PUBLIC_URL, if the stack has one) as the stack has them")
    if "alertmanager" in routes and "alertmanager" not in tokens:
        return ("alertmanager injects are skipped: they need the alertmanager intake token (PINGAN_INTAKE_TOKENS or "
                "<data dir>/intake-tokens.json)")
    return None


class Routes:
    """Sends one inject through its route; returns the last answer and the incident it made (None if refused)."""

    def __init__(self, url: str, tokens: dict[str, str], run_id: str, twilio: TwilioSigner | None) -> None:
        self.url, self.tokens, self.run_id, self.twilio = url.rstrip("/"), tokens, run_id, twilio

    def send(self, inject: Inject, now: datetime) -> tuple[httpx.Response, str | None]:
        if inject.route == "alertmanager":
            return self._alertmanager(inject, now)
        if inject.route == "sms":
            return self._twilio(inject, [("/sms", twilio_sms_form(inject, self.run_id, self._sid("SM"),
                                                                  *self._accounts()))])
        if inject.route == "voice":
            return self._twilio(inject, twilio_voice_forms(inject, self.run_id, self._sid("CA"), *self._accounts()))
        raise ValueError(f"inject {inject.id}: route {inject.route} is not sent here")

    def _alertmanager(self, inject: Inject, now: datetime) -> tuple[httpx.Response, str | None]:
        response = httpx.post(self.url + "/v1/intake/alertmanager", json=alertmanager_webhook(inject, self.run_id, now),
                              headers={"Authorization": f"Bearer {self.tokens['alertmanager']}"}, timeout=30)
        accepted = response.json().get("accepted", []) if response.is_success else []
        return response, accepted[0]["id"] if accepted else None

    def _twilio(self, inject: Inject, posts: list[tuple[str, dict[str, str]]]) -> tuple[httpx.Response, str | None]:
        assert self.twilio is not None  # route_problem refused the run before its first inject
        response: httpx.Response | None = None
        for path, form in posts:  # one webhook after the other, as Twilio posts them during the text or call
            signature = self.twilio.sign(TWILIO_BASE + path, form)
            response = httpx.post(self.url + TWILIO_BASE + path, data=form, timeout=30,
                                  headers={"X-Twilio-Signature": signature})
            if not response.is_success:
                return response, None
        assert response is not None
        found = response.headers.get(DRILL_INCIDENT_HEADER) or next(iter(_REF.findall(response.text)), None)
        return response, found

    def _accounts(self) -> tuple[str, str]:
        assert self.twilio is not None
        return self.twilio.account_sid, self.twilio.hotline

    @staticmethod
    def _sid(prefix: str) -> str:
        return prefix + secrets.token_hex(16)
