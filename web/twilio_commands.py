"""Commands by phone: SMS replies (`<ref> 1`, `ACK <ref>`, `确认 <ref>`), voice keypresses, Twilio status callbacks."""

import logging

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from pingan import metrics
from pingan.commands import chain_member, parse_sms_command, refuse, run_command
from pingan.handlers.channels.twilio_voice import keypress_command
from pingan.handlers.incidents.delivery import ACTOR as NOTIFIER
from pingan.handlers.incidents.escalation import Command, CommandRefused
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.schemas.notification import DeliveryState, Notification
from pingan.web.intake import Intake

log = logging.getLogger("pingan.intake")

REPLIES = {
    "done": {"zh": "【平安】已{verb}事件 {ref}。", "en": "[Pingan] {verb} {ref}: done."},
    "refused": {"zh": "【平安】抱歉，您不在事件 {ref} 的指挥链中，指令未执行。如需报警请直接发送情况。",
                "en": "[Pingan] Sorry, you are not in the chain of incident {ref}; the command was not carried out."},
    "failed": {"zh": "【平安】指令未执行：{why}", "en": "[Pingan] Not done: {why}"},
    "already": {"zh": "【平安】事件 {ref} 已被确认，无需重复。",
                "en": "[Pingan] {ref} is already acknowledged; nothing changed."},
    "usage": {"zh": "【平安】没有待确认的点名。回复“编号 1”确认、“编号 2”升级、“编号 3”关闭；报警请直接描述情况。",
              "en": "[Pingan] No roll call is waiting. Reply '<ref> 1' to acknowledge, '<ref> 2' to escalate, "
                    "'<ref> 3' to close; to report, describe what is happening."},
}
VERBS = {Command.acknowledge: {"zh": "确认", "en": "Acknowledged"}, Command.escalate: {"zh": "升级", "en": "Escalated"},
         Command.close: {"zh": "关闭", "en": "Closed"}, Command.confirm: {"zh": "确认到岗", "en": "Confirmed"}}


def _sms(text: str) -> str:
    reply = MessagingResponse()
    reply.message(text)
    return str(reply)


def sms_command(intake: Intake, form: dict[str, str], lang: str) -> str | None:
    """TwiML answering an SMS command, or None when the text is not a command (then it is a report)."""
    body = form.get("Body", "").strip()
    if body == "1":  # a bare "1" answers the newest roll call (点名) sent to this number, and is never a report
        for entry in intake.store.latest_to(form.get("From", "")):
            n = entry.notification
            if confirm_roll_calls(intake, n.incident_id, n.recipient.id) or _had_roll_call(intake, n):
                return _sms(REPLIES["done"][lang].format(verb=VERBS[Command.confirm][lang], ref=n.incident_id))
        return _sms(REPLIES["usage"][lang])
    parsed = parse_sms_command(body)
    if parsed is None:
        return None
    ref, command = parsed
    phone = form.get("From", "")
    store = intake.store
    incident_id = store.resolve_incident_id(ref)
    person = chain_member(store, incident_id, phone) if incident_id else None
    if person is None:
        # Only someone this incident told may command it; the attempt itself goes in the log.
        refuse(store, incident_id, f"sms:{phone}", f"{phone} is not in the chain of {ref}")
        log.warning("intake hotline_sms: refused command %s %s from %s", ref, command.value, phone)
        return _sms(REPLIES["refused"][lang].format(ref=ref))
    plans = intake.plans()
    details = {"via": "sms", "reason": "closed by SMS reply"} if command is Command.close else {"via": "sms"}
    try:
        confirmed = command is Command.acknowledge and incident_id and confirm_roll_calls(intake, incident_id, person)
        incident = store.get_incident(incident_id) if incident_id else None
        if confirmed and incident is not None and incident.state.value != "open":
            # Already acknowledged: this "1" was the roll-call answer only.
            return _sms(REPLIES["done"][lang].format(verb=VERBS[Command.confirm][lang], ref=ref))
        result = run_command(store, plans, ref, command, person, **details)
    except CommandRefused as exc:
        return _sms(REPLIES["failed"][lang].format(why=exc))
    if result.note:
        return _sms(REPLIES["already"][lang].format(ref=ref))
    return _sms(REPLIES["done"][lang].format(verb=VERBS[command][lang], ref=ref))


def _had_roll_call(intake: Intake, n: Notification) -> bool:
    """Whether `n` was a roll-call (an already-confirmed person answering again gets a confirmation, not a report)."""
    plans = intake.plans()
    plan = plans.get(n.plan_id)
    incident = intake.store.get_incident(n.incident_id)
    level = plan.level(incident.grade) if plan and incident else None
    return any(s.id == n.step and s.roll_call for s in (level.notify if level else []))


def confirm_roll_calls(intake: Intake, incident_id: str, person: str, via: str = "sms") -> int:
    """A "1" from a roll-call recipient also confirms them at their post (点名), for each such step."""
    from pingan.store.response import ResponseStore

    incident = intake.store.get_incident(incident_id)
    plans = intake.plans()
    done = 0
    for entry in intake.store.ledger_for(incident_id):
        n = entry.notification
        plan = plans.get(n.plan_id)
        level = plan.level(incident.grade) if plan and incident else None
        step = next((s for s in level.notify if s.id == n.step), None) if level else None
        if step is not None and step.roll_call and n.recipient.id == person:
            done += len(ResponseStore(intake.store).confirm(incident_id, step.id, person, [ActionDraft(
                incident_id=incident_id, at=utcnow(), actor=person, kind=ActionKind.confirmed,
                details={"step": step.id, "via": via})]))
    return done


def voice_ack(intake: Intake, key: str, form: dict[str, str]) -> str:
    """The keypress on a notification call: 4 acknowledges, 5 escalates, 6 closes."""
    response = VoiceResponse()
    entry = intake.store.ledger_entry(key)
    command = keypress_command(form.get("Digits", ""))
    if entry is None or command is None:
        response.say("无效按键。Invalid key.", language="zh-CN")
        response.hangup()
        return str(response)
    n = entry.notification
    if form.get("To") and form["To"] != n.recipient.address and form.get("From") != n.recipient.address:
        refuse(intake.store, n.incident_id, f"voice:{form.get('To')}", "keypress from a number not called")
        response.hangup()
        return str(response)
    details = {"via": "voice", "notification": key}
    if command == "close":
        details["reason"] = "closed by voice keypress"
    try:
        run_command(intake.store, intake.plans(), n.incident_id, Command(command),
                    n.recipient.id, **details)
        response.say("已收到，谢谢。Received, thank you.", language="zh-CN")
    except CommandRefused as exc:
        response.say(f"指令未执行。{exc}", language="zh-CN")
    response.hangup()
    return str(response)


_FINAL = {"delivered": DeliveryState.delivered, "completed": DeliveryState.delivered,
          "failed": DeliveryState.failed, "undelivered": DeliveryState.failed, "busy": DeliveryState.failed,
          "no-answer": DeliveryState.failed, "canceled": DeliveryState.failed}


def status_callback(intake: Intake, form: dict[str, str]) -> None:
    """Twilio's delivery report for a message or call becomes a `delivered` or `failed` entry."""
    sid = form.get("MessageSid") or form.get("CallSid") or ""
    status = (form.get("MessageStatus") or form.get("CallStatus") or "").lower()
    state = _FINAL.get(status)
    entry = intake.store.ledger_by_provider_id(sid) if sid else None
    if state is None or entry is None:
        return  # queued / sent / ringing are not final, and an unknown SID is not ours
    n = entry.notification
    kind = ActionKind.delivered if state is DeliveryState.delivered else ActionKind.failed
    detail = f"twilio {status}" + (f" (error {form['ErrorCode']})" if form.get("ErrorCode") else "")
    metrics.delivery_report(entry, state is DeliveryState.delivered)
    intake.store.record_result(n.idempotency_key, state, sid, detail, [ActionDraft(
        incident_id=n.incident_id, at=utcnow(), actor=NOTIFIER, kind=kind, plan_id=n.plan_id,
        plan_version=n.plan_version, idempotency_key=f"{kind.value}:{n.idempotency_key}",
        details={"notification": n.idempotency_key, "recipient": n.recipient.id, "channel": n.channel.value,
                 "provider_id": sid, "status": status, "reason": detail})])
