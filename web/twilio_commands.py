"""Commands by phone: SMS replies (`<ref> 1`, `ACK <ref>`, `确认 <ref>`), voice keypresses, Twilio status callbacks."""

import logging
from collections.abc import Callable

from twilio.twiml.messaging_response import MessagingResponse
from twilio.twiml.voice_response import VoiceResponse

from pingan import metrics
from pingan.commands import parse_sms_command, phone_sender, refuse, run_command
from pingan.handlers.channels.twilio_voice import keypress_command
from pingan.handlers.incidents.broadcast import is_public
from pingan.handlers.incidents.delivery import ACTOR as NOTIFIER
from pingan.handlers.incidents.escalation import Command, CommandRefused
from pingan.schemas.action import ActionDraft, ActionKind
from pingan.schemas.common import utcnow
from pingan.schemas.notification import DeliveryState, Notification
from pingan.store.phone_commands import PhoneCommands
from pingan.web.intake import Intake

log = logging.getLogger("pingan.intake")

REPLIES = {
    "done": {"zh": "【平安】已{verb}事件 {ref}。", "en": "[Pingan] {verb} {ref}: done."},
    "refused": {"zh": "【平安】抱歉，您不在事件 {ref} 的指挥链中，指令未执行。如需报警请直接发送情况。",
                "en": "[Pingan] Sorry, you are not in the chain of incident {ref}; the command was not carried out."},
    "failed": {"zh": "【平安】指令未执行：{why}", "en": "[Pingan] Not done: {why}"},
    "already": {"zh": "【平安】事件 {ref} 已被确认，无需重复。",
                "en": "[Pingan] {ref} is already acknowledged; nothing changed."},
    "pending": {"zh": "【平安】指令已收到，正在处理。", "en": "[Pingan] Command received; it is being carried out."},
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


def once(intake: Intake, key: str | None, phone: str, run: Callable[[], str], pending: str) -> str:
    """`run()`'s answer, run once per message or call (`key`): a re-posted copy gets the first answer and runs and
    logs nothing (store/phone_commands.py); `pending` if the first copy is still running after a few seconds."""
    if key is None:  # Twilio always sends a MessageSid or CallSid; without one there is nothing to key on
        return run()
    commands = PhoneCommands(intake.store)
    mine, first = commands.claim(key, phone)
    if not mine:
        log.info("intake: %s from %s again; answered as the first time, nothing run", key, phone)
        return first if first is not None else pending
    try:
        reply = run()
    except BaseException:
        commands.release(key)  # nothing was answered: a retry of this message may run it
        raise
    commands.answered(key, reply)
    return reply


def sms_command(intake: Intake, form: dict[str, str], lang: str) -> str | None:
    """TwiML answering an SMS command, or None when the text is not a command (then it is a report). Once per
    MessageSid: the same message posted again is answered as the first time and changes nothing."""
    body = form.get("Body", "").strip()
    parsed = parse_sms_command(body)
    if body != "1" and parsed is None:
        return None
    key = f"sms:{form['MessageSid']}" if form.get("MessageSid") else None
    return once(intake, key, form.get("From", ""), lambda: _sms_command(intake, form, lang, parsed, key),
                _sms(REPLIES["pending"][lang]))


def _sms_command(intake: Intake, form: dict[str, str], lang: str, parsed: tuple[str, Command] | None,
                 key: str | None) -> str:
    if parsed is None:  # a bare "1" answers the newest roll call (点名) sent to this number, and is never a report
        for entry in intake.store.latest_to(form.get("From", "")):
            n = entry.notification
            if confirm_roll_calls(intake, n.incident_id, n.recipient.id) or _had_roll_call(intake, n):
                return _sms(REPLIES["done"][lang].format(verb=VERBS[Command.confirm][lang], ref=n.incident_id))
        return _sms(REPLIES["usage"][lang])
    ref, command = parsed
    phone = form.get("From", "")
    store = intake.store
    plans = intake.plans()
    incident_id = store.resolve_incident_id(ref)
    sender = phone_sender(store, incident_id, phone, plans) if incident_id else None
    person = sender.person if sender else None
    if person is None:
        # Only a number this incident reached (or on duty on its rosters) may command it; the attempt is logged.
        why = sender.why_not if sender else f"{phone} is not in the chain of {ref}"
        refuse(store, incident_id, f"sms:{phone}", why, key=key)
        log.warning("intake hotline_sms: refused command %s %s from %s: %s", ref, command.value, phone, why)
        return _sms(REPLIES["refused"][lang].format(ref=ref))
    details = {"via": "sms", "reason": "closed by SMS reply"} if command is Command.close else {"via": "sms"}
    if form.get("MessageSid"):
        details["message_sid"] = form["MessageSid"]
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
    """The keypress on a notification call: 4 acknowledges, 5 escalates, 6 closes. Once per CallSid."""
    call = f"voice:{form['CallSid']}" if form.get("CallSid") else None
    pending = VoiceResponse()
    pending.say("已收到。Received.", language="zh-CN")
    pending.hangup()
    return once(intake, call, form.get("From", ""), lambda: _voice_ack(intake, key, form), str(pending))


def _voice_ack(intake: Intake, key: str, form: dict[str, str]) -> str:
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
    if is_public(n):  # a release's SMS to a public subscriber: the ledger only, their number stays out of the log
        intake.store.record_result(n.idempotency_key, state, sid, detail, [])
        return
    intake.store.record_result(n.idempotency_key, state, sid, detail, [ActionDraft(
        incident_id=n.incident_id, at=utcnow(), actor=NOTIFIER, kind=kind, plan_id=n.plan_id,
        plan_version=n.plan_version, idempotency_key=f"{kind.value}:{n.idempotency_key}",
        details={"notification": n.idempotency_key, "recipient": n.recipient.id, "channel": n.channel.value,
                 "provider_id": sid, "status": status, "reason": detail})])
