"""Email channel over SMTP (smtplib). Never raises: every problem is a SendResult.

A 250 after DATA means the server took responsibility for the message, not that it reached a mailbox, so a
send is "accepted"; no bounce or DSN is tracked afterwards. Each message's Message-ID is derived from the
notification's idempotency key, so a retry after an ambiguous failure (a connection lost after the final dot)
carries the same Message-ID and a receiving system can drop the duplicate.

E-mail is at-least-once: a 4xx, a lost connection or a worker killed mid-send is sent again (with backoff, up to
the notifier's attempt limit) with the same Message-ID and X-Pingan-Idempotency-Key, never written off as
"cannot tell". A 5xx is permanent.
"""

import hashlib
import re
import smtplib
import ssl
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import format_datetime

from pingan.schemas.delivery import ReconcileOutcome, ReconcileResult, SendOutcome, SendResult
from pingan.schemas.notification import Notification

SUBJECT_MAX = 78  # RFC 5322's recommended line length: the subject stays one unfolded header line
DEFAULT_SUBJECT = "Pingan notification"
# Deliberately loose (the server has the last word), but it keeps out CR/LF, spaces and display-name forms.
ADDRESS = re.compile(r"^[^@\s<>()\[\],;:\"]+@[^@\s<>()\[\],;:\"]+$")
MSGID_SAFE = re.compile(r"^[A-Za-z0-9._-]+$")


def subject_for(text: str) -> str:
    """The first non-blank line of the text, whitespace collapsed, at most 78 characters (… when cut)."""
    first = next((" ".join(line.split()) for line in text.splitlines() if line.strip()), "")
    if not first:
        return DEFAULT_SUBJECT
    return first if len(first) <= SUBJECT_MAX else first[:SUBJECT_MAX - 1] + "…"


def message_id(idempotency_key: str) -> str:
    # The key is hex in practice; any other key is hashed so that the msg-id stays syntactically valid.
    local = idempotency_key if MSGID_SAFE.match(idempotency_key) else hashlib.sha256(
        idempotency_key.encode()).hexdigest()[:32]
    return f"<{local}@pingan>"


class EmailChannel:
    """reconcile() says not_sent: SMTP has no way to ask a server whether it accepted a message earlier, so a
    message in doubt goes again with the same Message-ID (at-least-once), for the receiving side to drop."""

    name = "email"
    guarantee = "at_least_once"

    def __init__(self, host: str, port: int, sender: str, username: str | None = None, password: str | None = None,
                 starttls: bool = False, timeout_s: float = 10) -> None:
        self.host = host
        self.port = port
        self.sender = sender
        self.username = username
        self._password = password
        self.starttls = starttls
        self.timeout_s = timeout_s

    def build_message(self, notification: Notification) -> EmailMessage:
        n = notification
        msg = EmailMessage()
        msg["Subject"] = subject_for(n.text)
        msg["From"] = self.sender
        msg["To"] = n.recipient.address
        msg["Date"] = format_datetime(datetime.now(UTC))
        msg["Message-ID"] = message_id(n.idempotency_key)
        # RFC 3834: tells vacation responders not to answer, so an alert storm does not become a reply storm.
        msg["Auto-Submitted"] = "auto-generated"
        msg["X-Pingan-Incident"] = n.incident_id
        msg["X-Pingan-Idempotency-Key"] = n.idempotency_key
        msg.set_content(n.text, charset="utf-8")
        return msg

    def send(self, notification: Notification) -> SendResult:
        to = notification.recipient.address
        if not ADDRESS.match(to):
            return SendResult(SendOutcome.permanent_failure, detail=f"recipient address {to!r} is not an email address")
        try:
            msg = self.build_message(notification)
        except Exception as e:  # noqa: BLE001 - e.g. a header the email package refuses; retrying will not help
            return SendResult(SendOutcome.permanent_failure, detail=f"cannot build the email: {e}")
        try:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        except Exception as e:  # noqa: BLE001 - the contract is "never raise"
            return _failure(e)
        try:
            if self.starttls:
                smtp.starttls(context=ssl.create_default_context())
            if self.username:
                smtp.login(self.username, self._password or "")
            smtp.send_message(msg, from_addr=self.sender, to_addrs=[to])
        except Exception as e:  # noqa: BLE001 - the contract is "never raise"
            return _failure(e)
        finally:
            _quit(smtp)
        # Only after a clean DATA: a failing QUIT must not turn an accepted message into a retry.
        return SendResult(SendOutcome.accepted, provider_id=msg["Message-ID"],
                          extra={"smtp_host": self.host, "to": to})

    def reconcile(self, notification: Notification) -> ReconcileResult:
        return ReconcileResult(ReconcileOutcome.not_sent, detail="at-least-once: an SMTP server cannot be asked, "
                               "so it is sent again with the same Message-ID")


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except Exception:  # noqa: BLE001 - the outcome is already decided; only the socket is left to free
        smtp.close()


def _failure(e: BaseException) -> SendResult:
    """4xx and lost connections are worth a retry; 5xx and configuration problems are not."""
    code: int | None = None
    reply: bytes | str = b""
    if isinstance(e, smtplib.SMTPRecipientsRefused):
        code, reply = next(iter(e.recipients.values()), (None, b""))
    elif isinstance(e, smtplib.SMTPResponseException):
        code, reply = e.smtp_code, e.smtp_error
    if code is not None:
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        detail = f"SMTP {code}: {text}"
        extra = {"smtp_code": code}
        if 500 <= code < 600:
            return SendResult(SendOutcome.permanent_failure, detail=detail, extra=extra)
        # 4xx is SMTP's own "try again later"; an odd code (e.g. -1 for a garbled reply) is treated alike.
        return SendResult(SendOutcome.transient_failure, detail=detail, extra=extra)
    name = f"{type(e).__name__}: {e}"
    # SMTPException derives from OSError, so the SMTP cases must be sorted out before the network ones.
    if isinstance(e, smtplib.SMTPServerDisconnected):
        return SendResult(SendOutcome.transient_failure, detail=f"SMTP connection lost: {name}")
    if isinstance(e, smtplib.SMTPException):
        # SMTPNotSupportedError (no STARTTLS, no SMTPUTF8), no usable AUTH method: configuration, not luck.
        return SendResult(SendOutcome.permanent_failure, detail=f"SMTP error: {name}")
    if isinstance(e, ssl.SSLCertVerificationError):
        return SendResult(SendOutcome.permanent_failure, detail=f"SMTP TLS certificate rejected: {name}")
    if isinstance(e, OSError):
        # Refused, reset, timed out, DNS: the server or the path to it may come back.
        return SendResult(SendOutcome.transient_failure, detail=f"SMTP server unreachable: {name}")
    return SendResult(SendOutcome.permanent_failure, detail=f"SMTP client error: {name}")


def _secret(value: object) -> str | None:
    # pydantic's SecretStr hides the value behind get_secret_value(); accept it as well as a plain str.
    getter = getattr(value, "get_secret_value", None)
    return getter() if callable(getter) else (str(value) if value else None)


def email_channel_from_env(settings_like: object) -> EmailChannel | None:
    """The channel from smtp_host, smtp_port, smtp_sender, smtp_username, smtp_password, smtp_starttls and
    smtp_timeout_s attributes (read with getattr, so settings that do not have them yet simply give None).
    None unless smtp_host and smtp_sender are set. Port defaults to 587 with STARTTLS, else 25."""
    host = getattr(settings_like, "smtp_host", None)
    sender = getattr(settings_like, "smtp_sender", None)
    if not host or not sender:
        return None
    starttls = bool(getattr(settings_like, "smtp_starttls", None) or False)
    port = getattr(settings_like, "smtp_port", None) or (587 if starttls else 25)
    timeout = getattr(settings_like, "smtp_timeout_s", None) or 10
    return EmailChannel(str(host), int(port), str(sender), username=getattr(settings_like, "smtp_username", None),
                        password=_secret(getattr(settings_like, "smtp_password", None)), starttls=starttls,
                        timeout_s=float(timeout))
