"""The drill report: one self-contained HTML file (inline CSS, an inline SVG timeline chart; no network). Pure.

Input is the JSON `pingan drill run --json` writes (handlers.scoring per incident); zh-CN by default, en on request.
"""

from __future__ import annotations

from html import escape
from typing import Any

TEXT = {
    "zh": {
        "lang": "zh-CN", "report": "演练评估报告", "score": "总分", "formula": "评分公式", "speed": "加速倍数",
        "run": "演练编号", "started": "开始", "duration": "时长（预案分钟）", "interrupted": "已中断：部分报告",
        "incident": "事件", "plan": "启用预案", "grade": "等级", "level": "响应级别", "step": "步骤",
        "target": "目标（分钟）", "actual": "实际（分钟）", "result": "结果", "ack": "确认", "where": "预案位置",
        "figures": "关键指标", "first_notify": "首次通知用时", "first_ack": "首次确认用时", "escalations": "升级次数",
        "repeats": "重复通知次数", "roll_call": "点名完成", "tasks": "任务按时完成",
        "task": "任务", "deadline": "期限（分钟）", "done_at": "完成（分钟）", "done_by": "完成人",
        "misses": "未达标与失误", "none": "无", "chart": "时间线", "injects": "注入", "notes": "备注",
        "met": "达标", "late": "迟到", "missed": "未达标", "not_due": "未到期", "n/a": "不适用",
        "legend": "◇ 目标时间　● 实际时间（绿：达标，红：未达标）　▲ 确认　| 升级/重复", "min": "分钟",
        "checks": "达标检查项", "failures": "失误", "followed": "随后的升级/重复",
    },
    "en": {
        "lang": "en", "report": "Drill report", "score": "Score", "formula": "Formula", "speed": "Speed",
        "run": "Run", "started": "Started", "duration": "Duration (plan minutes)",
        "interrupted": "Interrupted: partial report", "incident": "Incident", "plan": "Plan activated",
        "grade": "Grade", "level": "Response level", "step": "Step", "target": "Target (min)",
        "actual": "Actual (min)", "result": "Result", "ack": "Acknowledgement", "where": "Plan line",
        "figures": "Figures", "first_notify": "Time to first notification", "first_ack": "Time to first "
        "acknowledgement", "escalations": "Escalations", "repeats": "Repeats", "roll_call": "Roll call",
        "tasks": "Tasks done by deadline", "task": "Task", "deadline": "Deadline (min)", "done_at": "Done (min)",
        "done_by": "Done by",
        "misses": "Misses and failures", "none": "none", "chart": "Timeline", "injects": "Injects", "notes": "Notes",
        "met": "met", "late": "late", "missed": "missed", "not_due": "not due", "n/a": "n/a",
        "legend": "◇ target  ● actual (green met, red missed)  ▲ acknowledgement  | escalation/repeat", "min": "min",
        "checks": "Checks met", "failures": "Failures", "followed": "escalations/repeats that followed",
    },
}

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:24px;color:#1f2933;max-width:1200px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:19px;margin:28px 0 8px;border-bottom:2px solid #d0d7de}
h3{font-size:16px;margin:18px 0 6px}.meta{color:#52606d;font-size:13px}
.score{font-size:40px;font-weight:700}.bad{color:#b42318}.good{color:#067647}.warn{color:#b54708}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f4f6}
td.met{background:#ecfdf3}td.missed,td.late{background:#fef3f2}code{font-size:12px}
.box{background:#f8fafc;border:1px solid #d0d7de;padding:8px 12px;border-radius:6px;font-size:13px}
svg text{font-size:11px;font-family:inherit}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _num(value: Any) -> str:
    return "—" if value is None else f"{value:g}" if isinstance(value, (int, float)) else _e(value)


def chart(incident: dict[str, Any], t: dict[str, str], duration: float) -> str:
    """Rows per level step: target (◇) and actual (●) minute on one axis of drill minutes."""
    rows: list[tuple[str, dict[str, Any], float]] = []
    for level in incident.get("levels", []):
        for step in level["steps"]:
            rows.append((f"{level['grade']} · {step['step']}", step, level["drill_start_min"]))
    if not rows:
        return ""
    left, width, row_h, top = 230, 900, 20, 24
    span = max([duration, 1.0] + [r[2] + (r[1]["notify"]["target_min"] or 0) for r in rows]
               + [r[2] + (r[1]["notify"]["actual_min"] or 0) for r in rows])
    height = top + row_h * len(rows) + 30

    def x(minute: float) -> float:
        return round(left + width * minute / span, 1)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" aria-label="{_e(t["chart"])}" '
             f'width="{left + width + 20}" height="{height}" viewBox="0 0 {left + width + 20} {height}">']
    step_tick = max(1, round(span / 12))
    minute = 0
    while minute <= span:
        parts.append(f'<line x1="{x(minute)}" y1="{top - 6}" x2="{x(minute)}" y2="{height - 24}" stroke="#e5e7eb"/>'
                     f'<text x="{x(minute)}" y="{height - 10}" text-anchor="middle">t+{minute}</text>')
        minute += step_tick
    for level in incident.get("levels", []):
        start = level["drill_start_min"]
        parts.append(f'<line x1="{x(start)}" y1="{top - 10}" x2="{x(start)}" y2="{height - 24}" stroke="#6366f1" '
                     f'stroke-dasharray="4 3"/><text x="{x(start) + 3}" y="{top - 12}" fill="#4338ca">'
                     f'{_e(level["grade"])}</text>')
        for esc in level.get("escalations", []):
            parts.append(f'<line x1="{x(start + esc["at_min"])}" y1="{top}" x2="{x(start + esc["at_min"])}" '
                         f'y2="{height - 24}" stroke="#f59e0b" stroke-width="1"><title>{_e(esc["step"])} '
                         f'{_e(esc["deadline"])} #{_e(esc["attempt"])}</title></line>')
        for ack in level.get("acknowledgements", []):
            ax = x(start + ack["at_min"])
            parts.append(f'<polygon points="{ax},{top - 4} {ax - 5},{top + 5} {ax + 5},{top + 5}" fill="#2563eb">'
                         f'<title>{_e(ack["by"])}</title></polygon>')
    for n, (label, step, start) in enumerate(rows):
        y = top + row_h * n + row_h / 2 + 6
        parts.append(f'<text x="4" y="{y + 4}">{_e(label)}</text>')
        notify = step["notify"]
        if notify["target_min"] is not None:
            tx = x(start + notify["target_min"])
            parts.append(f'<polygon points="{tx},{y - 6} {tx + 6},{y} {tx},{y + 6} {tx - 6},{y}" fill="none" '
                         f'stroke="#374151"><title>target t+{notify["target_min"]:g}</title></polygon>')
        if notify["actual_min"] is not None:
            colour = "#16a34a" if notify["result"] == "met" else "#dc2626"
            parts.append(f'<circle cx="{x(start + notify["actual_min"])}" cy="{y}" r="4" fill="{colour}">'
                         f'<title>actual t+{notify["actual_min"]:g}</title></circle>')
        ack = step.get("ack") or {}
        if ack.get("actual_min") is not None:
            parts.append(f'<text x="{x(start + ack["actual_min"]) - 4}" y="{y + 4}" fill="#2563eb">▲</text>')
    parts.append("</svg>")
    return "".join(parts)


def _cell(result: str | None, t: dict[str, str]) -> str:
    return f'<td class="{_e(result)}">{_e(t.get(result or "", result or "—"))}</td>'


def render_html(results: dict[str, Any], lang: str = "zh") -> str:
    t = TEXT["en" if lang == "en" else "zh"]
    score = results["score"]
    title = results.get("scenario_en") if lang == "en" and results.get("scenario_en") else results["scenario"]
    cls = "good" if score["value"] >= 80 else "warn" if score["value"] >= 50 else "bad"
    out = [f'<!DOCTYPE html><html lang="{t["lang"]}"><head><meta charset="utf-8"><title>{_e(t["report"])}: '
           f'{_e(title)}</title><style>{CSS}</style></head><body>',
           f'<h1>{_e(t["report"])}：{_e(title)}</h1>' if lang != "en" else f'<h1>{_e(t["report"])}: {_e(title)}</h1>',
           f'<p class="meta">{_e(t["run"])} {_e(results["run_id"])} · {_e(t["started"])} {_e(results["started_at"])} '
           f'· {_e(t["speed"])} ×{_num(results["speed"])} · {_e(t["duration"])} {_num(results["duration_min"])}</p>']
    if results.get("interrupted"):
        out.append(f'<p class="bad"><b>{_e(t["interrupted"])}</b></p>')
    out.append(f'<table id="score-summary"><tr><th>{_e(t["score"])}</th><th>{_e(t["checks"])}</th>'
               f'<th>{_e(t["failures"])}</th></tr><tr><td class="score {cls}">{_num(score["value"])}</td>'
               f'<td>{score["checks_met"]} / {score["checks_scored"]}</td><td>{score["failures"]}</td></tr></table>'
               f'<p class="box">{_e(t["formula"])}: {_e(score["formula"]["en" if lang == "en" else "zh"])}</p>')
    out.append(f'<h2>{_e(t["injects"])}</h2><table><tr><th>id</th><th>t+</th><th></th><th>{_e(t["notes"])}</th></tr>')
    for inject in results.get("injects", []):
        out.append(f'<tr><td>{_e(inject["id"])}</td><td>{_num(inject["at_min"])}</td><td>{_e(inject["kind"])}</td>'
                   f'<td>{_e(inject.get("note"))}</td></tr>')
    out.append("</table>")
    for incident in results.get("incidents", []):
        out.append(f'<h2>{_e(t["incident"])} {_e(incident.get("incident_id"))} — {_e(incident.get("title"))}</h2>'
                   f'<p class="meta">{_e(t["plan"])}: <b>{_e(incident.get("plan_id") or "—")}</b> '
                   f'({_e(incident.get("plan_file"))}) · {_e(t["grade"])} {_e(incident.get("grade"))} · '
                   f'{_e(incident.get("status"))} · inject {_e(incident.get("inject"))}</p>')
        out.append(f'<h3>{_e(t["chart"])}</h3>{chart(incident, t, results.get("duration_min") or 0)}'
                   f'<p class="meta">{_e(t["legend"])}</p>')
        figures = incident.get("figures") or {}
        rc, tasks = figures.get("roll_call") or {}, figures.get("tasks") or {}
        out.append(f'<h3>{_e(t["figures"])}</h3><table class="figures">'
                   f'<tr><th>{_e(t["first_notify"])}</th><td>{_num(figures.get("time_to_first_notification_min"))} '
                   f'{_e(t["min"])}</td></tr>'
                   f'<tr><th>{_e(t["first_ack"])}</th><td>{_num(figures.get("time_to_first_ack_min"))} '
                   f'{_e(t["min"])}</td></tr>'
                   f'<tr><th>{_e(t["escalations"])}</th><td>{_num(figures.get("escalations"))}</td></tr>'
                   f'<tr><th>{_e(t["repeats"])}</th><td>{_num(figures.get("repeats"))}</td></tr>'
                   f'<tr><th>{_e(t["roll_call"])}</th><td>{_num(rc.get("confirmed"))} / {_num(rc.get("notified"))}'
                   f'</td></tr><tr><th>{_e(t["tasks"])}</th><td>{_num(tasks.get("done_by_deadline"))} / '
                   f'{_num(tasks.get("due"))}</td></tr></table>')
        for level in incident.get("levels", []):
            out.append(f'<h3>{_e(t["level"])} {_e(level["grade"])} {_e(level["response_level"])} '
                       f'<span class="meta">{_e(level.get("where"))}</span></h3>'
                       f'<table class="score-table"><tr><th>{_e(t["step"])}</th><th>{_e(t["target"])}</th>'
                       f'<th>{_e(t["actual"])}</th><th>{_e(t["result"])}</th><th>{_e(t["ack"])} '
                       f'{_e(t["target"])}</th><th>{_e(t["ack"])} {_e(t["actual"])}</th><th>{_e(t["ack"])}</th>'
                       f'<th>{_e(t["where"])}</th></tr>')
            for step in level["steps"]:
                notify, ack = step["notify"], step.get("ack") or {}
                out.append(f'<tr><td>{_e(step["step"])}</td><td>{_num(notify["target_min"])}</td>'
                           f'<td>{_num(notify["actual_min"])}</td>{_cell(notify["result"], t)}'
                           f'<td>{_num(ack.get("target_min"))}</td><td>{_num(ack.get("actual_min"))}</td>'
                           f'{_cell(ack.get("result"), t) if ack else "<td>—</td>"}'
                           f'<td><code>{_e(step.get("where"))}</code></td></tr>')
            out.append("</table>")
            if level.get("tasks"):
                out.append(f'<table class="task-table"><tr><th>{_e(t["task"])}</th><th>{_e(t["deadline"])}</th>'
                           f'<th>{_e(t["done_at"])}</th><th>{_e(t["result"])}</th><th>{_e(t["done_by"])}</th>'
                           f'<th>{_e(t["where"])}</th></tr>')
                for task in level["tasks"]:
                    title = task["title"].get("zh" if t is TEXT["zh"] else "en") or task["task"]
                    out.append(f'<tr><td>{_e(task["task"])}: {_e(title)}</td><td>{_num(task["deadline_min"])}</td>'
                               f'<td>{_num(task.get("actual_min"))}</td>{_cell(task.get("result"), t)}'
                               f'<td>{_e(task.get("by") or "—")}</td>'
                               f'<td><code>{_e(task.get("where"))}</code></td></tr>')
                out.append("</table>")
        out.append(f'<h3>{_e(t["misses"])}</h3>')
        misses = _misses(incident, t)
        out.append("<ul>" + "".join(misses) + "</ul>" if misses else f'<p>{_e(t["none"])}</p>')
        if incident.get("notes"):
            out.append(f'<p class="meta">{_e(t["notes"])}: {_e("; ".join(incident["notes"]))}</p>')
    out.append("</body></html>")
    return "\n".join(out)


def _misses(incident: dict[str, Any], t: dict[str, str]) -> list[str]:
    items = []
    for failure in incident.get("failures", []):
        items.append(f'<li class="bad">{_e(failure["message"])} <code>{_e(failure.get("where"))}</code></li>')
    for level in incident.get("levels", []):
        for step in level["steps"]:
            notify, ack = step["notify"], step.get("ack") or {}
            if notify["result"] in ("missed", "late"):
                items.append(f'<li class="bad">[{_e(level["grade"])}] {_e(step["step"])}: {_e(t[notify["result"]])} '
                             f'(t+{_num(notify["target_min"])} → {_num(notify["actual_min"])}) '
                             f'<code>{_e(step.get("where"))}</code></li>')
            if ack.get("result") in ("missed", "late"):
                followed = "; ".join(f't+{_num(e["at_min"])} {e["step"]} {e["deadline"]} #{e["attempt"]} → '
                                     f'{", ".join(e.get("recipients") or [])}'
                                     for e in ack.get("escalations_after", []))
                items.append(f'<li class="bad">[{_e(level["grade"])}] {_e(step["step"])} {_e(t["ack"])}: '
                             f'{_e(t[ack["result"]])} — {_e(ack.get("message", ""))} <code>{_e(step.get("where"))}'
                             f'</code><br>{_e(t["followed"])}: {_e(followed or t["none"])}</li>')
        for task in level.get("tasks", []):
            if task.get("result") in ("missed", "late"):
                items.append(f'<li class="bad">[{_e(level["grade"])}] {_e(t["task"])} {_e(task["task"])}: '
                             f'{_e(t[task["result"]])} (t+{_num(task["deadline_min"])} → '
                             f'{_num(task.get("actual_min"))}) <code>{_e(task.get("where"))}</code></li>')
    return items
