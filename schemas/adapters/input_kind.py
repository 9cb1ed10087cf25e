"""What an intake file is (CAP, Alertmanager, incident JSON, Twilio SMS or voice form), told from its first bytes.
Light on purpose: the CLI's options use it, and `pingan --help` must not import the adapters."""

import json
from enum import StrEnum


class InputKind(StrEnum):
    auto = "auto"
    cap = "cap"
    alertmanager = "alertmanager"
    incident = "incident"
    twilio_sms = "twilio-sms"
    twilio_voice = "twilio-voice"


def detect(data: bytes) -> InputKind:
    head = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if head == b"<":
        return InputKind.cap
    if head == b"{":
        try:
            parsed = json.loads(data)
        except ValueError:
            return InputKind.incident  # the incident parser reports the JSON error with its position
        return InputKind.alertmanager if isinstance(parsed, dict) and "alerts" in parsed else InputKind.incident
    if b"CallSid=" in data:
        return InputKind.twilio_voice
    return InputKind.twilio_sms
