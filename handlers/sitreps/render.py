"""The situation report as one self-contained HTML file: inline CSS, charts as inline SVG drawn here, no script and
nothing fetched, so it prints to PDF (Chromium's print) and opens from an e-mail attachment alike. zh-CN by default,
en on request. Pure: a Sitrep in, text out.
"""

from __future__ import annotations

from html import escape
from typing import Any
from zoneinfo import ZoneInfo

from pingan.schemas.sitrep import AreaCount, Bucket, ChannelCounts, CountRow, Sitrep

TEXT: dict[str, dict[str, str]] = {
    "zh": {
        "lang": "zh-CN", "title": "突发事件态势研判报告", "day": "日报", "week": "周报", "month": "月报",
        "period": "统计时段", "previous": "上一时段", "generated": "生成时间", "tz": "时区",
        "summary": "概况", "incidents": "事件数", "reports": "警情数", "excluded": "未计入的演练/测试事件",
        "over_time": "事件数随时间变化", "by_category": "按类别", "by_subtype": "按子类", "by_grade": "按等级",
        "by_area": "按区域", "by_state": "按状态（报告时）", "key": "项目", "current": "本期", "prev": "上期",
        "change": "增减", "response": "响应时间（自接报起，分钟）", "measure": "指标", "n": "事件",
        "reached": "已发生", "median": "中位数", "p90": "P90", "with_target": "有目标", "met": "达标",
        "missed": "未达标", "target_rule": "目标来源", "first_notification": "首次通知",
        "first_acknowledgement": "首次确认", "close": "关闭", "notifications": "通知（按渠道）", "channel": "渠道",
        "intended": "应发", "sent": "已发出", "delivered": "已送达", "failed": "失败", "pending": "待处理",
        "roll_call": "点名完成率", "notified": "应答人数", "confirmed": "已确认", "tasks": "预案任务",
        "late": "超时完成", "not_due": "未到期", "total": "合计", "releases": "信息发布",
        "published": "已发布", "with_release": "有发布的事件", "first_release": "首次发布用时（分钟）",
        "not_available": "本系统尚无信息发布记录，此项不可用", "still_open": "尚未关闭的事件", "id": "编号",
        "event": "事件", "grade": "等级", "area": "区域", "state": "状态", "received": "接报时间",
        "open_hours": "已持续（小时）", "top_areas": "警情最多的区域", "none": "无", "percentiles": "统计口径",
        "legend": "■ 本期　■ 上期", "unspecified": "未注明", "merged": "已合并入其他事件",
        "rule_first_notification": "启用级别中最早的通知步骤（delay_min），容差 1 分钟",
        "rule_first_acknowledgement": "启用级别中最早的确认时限（步骤执行时间 + ack_timeout_min），容差 1 分钟",
        "rule_close": "预案未规定关闭时限，不计达标",
        "percentile_def": "中位数：排序后居中的值（偶数个时取中间两值的平均）；P90：最近秩法，第 ⌈0.9 × n⌉ 个最小值",
        "by_community": "按社区（网格化定位）", "by_grid": "重点社区的网格", "community": "社区", "grid_col": "网格",
        "unplaced": "未定位到社区", "incidents_prev": "事件（上期）", "reports_prev": "警情（上期）",
        "area_note": "按分诊定位的区域路径统计（坐标、地名或来电人登记区域），非自由填写的区域名",
    },
    "en": {
        "lang": "en", "title": "Situation report", "day": "daily", "week": "weekly", "month": "monthly",
        "period": "Period", "previous": "Previous period", "generated": "Generated", "tz": "Time zone",
        "summary": "Summary", "incidents": "Incidents", "reports": "Reports", "excluded": "Exercise/test incidents "
        "left out", "over_time": "Incidents over time", "by_category": "By category", "by_subtype": "By subtype",
        "by_grade": "By grade", "by_area": "By area", "by_state": "By state (at report time)", "key": "Item",
        "current": "This period", "prev": "Previous", "change": "Change",
        "response": "Response times (minutes from receipt)", "measure": "Measure", "n": "Incidents",
        "reached": "Reached", "median": "Median", "p90": "p90", "with_target": "With target", "met": "Met",
        "missed": "Missed", "target_rule": "Target", "first_notification": "First notification",
        "first_acknowledgement": "First acknowledgement", "close": "Close", "notifications": "Notifications by "
        "channel", "channel": "Channel", "intended": "Ordered", "sent": "Sent", "delivered": "Delivered",
        "failed": "Failed", "pending": "Pending", "roll_call": "Roll-call completion", "notified": "Called",
        "confirmed": "Confirmed", "tasks": "Plan tasks", "late": "Late", "not_due": "Not due", "total": "Total",
        "releases": "Public information releases", "published": "Published", "with_release": "Incidents with a "
        "release", "first_release": "Time to first release (min)", "not_available": "No release workflow in this "
        "store yet: not available", "still_open": "Incidents still open", "id": "ID", "event": "Incident",
        "grade": "Grade", "area": "Area", "state": "State", "received": "Received", "open_hours": "Open (hours)",
        "top_areas": "Areas with most reports", "none": "none", "percentiles": "Percentiles",
        "legend": "■ this period  ■ previous", "unspecified": "unspecified", "merged": "Merged into another",
        "rule_first_notification": "the activated level's earliest notify step (delay_min), 1 min tolerance",
        "rule_first_acknowledgement": "the activated level's earliest acknowledgement deadline (step run + "
        "ack_timeout_min), 1 min tolerance",
        "rule_close": "plans set no time to close: not scored",
        "percentile_def": "median: the middle value of the sorted times (the mean of the two middle ones for an even "
        "count); p90: nearest rank, the ceil(0.9 × n)-th smallest time",
        "by_community": "By community (placed by triage)", "by_grid": "Grids of the busiest communities",
        "community": "Community", "grid_col": "Grid", "unplaced": "not placed in a community",
        "incidents_prev": "Incidents (previous)", "reports_prev": "Reports (previous)",
        "area_note": "counted by the area path triage placed each incident in (coordinates, a place name or the "
        "caller's registered area), not the free-text area name",
    },
}

NAMES: dict[str, dict[str, str]] = {
    "natural_disaster": {"zh": "自然灾害", "en": "natural disaster"},
    "accident_disaster": {"zh": "事故灾难", "en": "accident"},
    "public_health": {"zh": "公共卫生事件", "en": "public health"},
    "social_security": {"zh": "社会安全事件", "en": "social security"},
    "other": {"zh": "其他突发事件", "en": "other"},
    "flood_drought": {"zh": "水旱灾害", "en": "flood/drought"}, "meteorological": {"zh": "气象灾害", "en": "weather"},
    "earthquake": {"zh": "地震灾害", "en": "earthquake"}, "geological": {"zh": "地质灾害", "en": "geological"},
    "marine": {"zh": "海洋灾害", "en": "marine"}, "forest_fire": {"zh": "森林草原火灾", "en": "forest fire"},
    "industrial_safety": {"zh": "工矿商贸安全事故", "en": "industrial safety"},
    "hazardous_chemicals": {"zh": "危险化学品", "en": "hazardous chemicals"},
    "transport": {"zh": "交通运输事故", "en": "transport"}, "public_facility": {"zh": "公共设施和设备事故",
                                                                               "en": "public facility"},
    "environmental_pollution": {"zh": "环境污染和生态破坏", "en": "pollution"}, "fire": {"zh": "火灾", "en": "fire"},
    "infectious_disease": {"zh": "传染病疫情", "en": "infectious disease"},
    "unexplained_illness": {"zh": "群体性不明原因疾病", "en": "unexplained illness"},
    "food_occupational_poisoning": {"zh": "食品安全和职业危害", "en": "food/occupational poisoning"},
    "animal_epidemic": {"zh": "动物疫情", "en": "animal epidemic"},
    "terrorist_attack": {"zh": "恐怖袭击事件", "en": "terrorist attack"},
    "mass_incident": {"zh": "群体性事件", "en": "mass incident"},
    "economic_security": {"zh": "经济安全事件", "en": "economic security"},
    "foreign_related": {"zh": "涉外突发事件", "en": "foreign-related"}, "cyber": {"zh": "网络与信息安全事件",
                                                                                "en": "cyber"},
    "general": {"zh": "未分类", "en": "general"}, "unclassified": {"zh": "待甄别", "en": "unclassified"},
    "criminal_case": {"zh": "刑事案件", "en": "criminal case"},
    "open": {"zh": "处置中", "en": "open"}, "acknowledged": {"zh": "已确认", "en": "acknowledged"},
    "closed": {"zh": "已关闭", "en": "closed"},
    "I": {"zh": "I 级（特别重大）", "en": "I (particularly serious)"},
    "II": {"zh": "II 级（重大）", "en": "II (serious)"},
    "III": {"zh": "III 级（较大）", "en": "III (relatively serious)"},
    "IV": {"zh": "IV 级（一般）", "en": "IV (general)"},
    "console": {"zh": "值班台", "en": "console"}, "twilio_sms": {"zh": "短信", "en": "SMS"},
    "twilio_voice": {"zh": "语音电话", "en": "voice"}, "sms": {"zh": "短信", "en": "SMS"},
    "voice": {"zh": "语音电话", "en": "voice"}, "webhook": {"zh": "Webhook", "en": "webhook"},
    "email": {"zh": "电子邮件", "en": "e-mail"},
}

CSS = """
body{font-family:system-ui,"Noto Sans CJK SC","Microsoft YaHei",sans-serif;margin:24px;color:#1f2933;max-width:1100px}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:26px 0 8px;border-bottom:2px solid #d0d7de}
.meta{color:#52606d;font-size:13px}.cards{display:flex;gap:12px;flex-wrap:wrap}
.card{border:1px solid #d0d7de;border-radius:6px;padding:8px 14px;min-width:120px}
.card b{display:block;font-size:28px}.up{color:#b42318}.down{color:#067647}
table{border-collapse:collapse;width:100%;font-size:13px;margin:6px 0 12px}
th,td{border:1px solid #d0d7de;padding:4px 6px;text-align:left;vertical-align:top}th{background:#f3f4f6}
td.n{text-align:right;font-variant-numeric:tabular-nums}.grid{display:grid;grid-template-columns:1fr 1fr;gap:0 24px}
svg text{font-size:11px;font-family:inherit}.bar{fill:#2563eb}.prev{fill:#94a3b8}.fail{fill:#dc2626}
@media print{body{margin:0}h2{break-after:avoid}table,svg{break-inside:avoid}}
"""


def _e(value: Any) -> str:
    return escape("" if value is None else str(value))


def _num(value: float | int | None) -> str:
    return "—" if value is None else f"{value:g}"


def _name(key: str, lang: str, t: dict[str, str]) -> str:
    if key == "-":
        return t["unspecified"]
    return NAMES.get(key, {}).get(lang, key)


def _change(row: CountRow) -> str:
    delta = row.current - row.previous
    css = "up" if delta > 0 else "down" if delta < 0 else ""
    return f'<td class="n {css}">{delta:+d}</td>'


def _counts_table(rows: list[CountRow], lang: str, t: dict[str, str]) -> str:
    if not rows:
        return f"<p>{t['none']}</p>"
    body = "".join(f"<tr><td>{_e(_name(r.key, lang, t))}</td><td class=n>{r.current}</td>"
                   f"<td class=n>{r.previous}</td>{_change(r)}</tr>" for r in rows)
    return (f"<table><tr><th>{t['key']}</th><th>{t['current']}</th><th>{t['prev']}</th><th>{t['change']}</th></tr>"
            f"{body}</table>")


def column_chart(buckets: list[Bucket], label: str) -> str:
    """Counts over time: a column per bucket, a count above each non-empty one, every few labels on the axis."""
    width, height, left, bottom = 720, 200, 30, 24
    n = max(1, len(buckets))
    top = max([b.current for b in buckets] + [1])
    slot = (width - left) / n
    every = max(1, n // 12)
    parts = [f'<svg class="chart" role="img" aria-label="{_e(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width}" y2="{height - bottom}" stroke="#52606d"/>',
             f'<text x="0" y="12">{top}</text>']
    for k, b in enumerate(buckets):
        h = (height - bottom - 16) * b.current / top
        x = left + k * slot + slot * 0.15
        y = height - bottom - h
        parts.append(f'<rect class="bar" x="{x:.1f}" y="{y:.1f}" width="{slot * 0.7:.1f}" height="{h:.1f}">'
                     f"<title>{_e(b.label)}: {b.current}</title></rect>")
        if b.current:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{y - 2:.1f}" text-anchor="middle">{b.current}</text>')
        if k % every == 0:
            parts.append(f'<text x="{x + slot * 0.35:.1f}" y="{height - 8}" text-anchor="middle">{_e(b.label)}</text>')
    return "".join(parts) + "</svg>"


def pair_chart(rows: list[CountRow], lang: str, t: dict[str, str], label: str) -> str:
    """This period against the previous one: two horizontal bars per row."""
    width, name_w, row_h = 720, 170, 30
    height = max(1, len(rows)) * row_h + 20
    top = max([r.current for r in rows] + [r.previous for r in rows] + [1])
    scale = (width - name_w - 40) / top
    parts = [f'<svg class="chart" role="img" aria-label="{_e(label)}" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for k, r in enumerate(rows):
        y = 6 + k * row_h
        parts.append(f'<text x="0" y="{y + 14}">{_e(_name(r.key, lang, t))}</text>')
        for j, (value, css) in enumerate(((r.current, "bar"), (r.previous, "prev"))):
            parts.append(f'<rect class="{css}" x="{name_w}" y="{y + j * 12}" width="{value * scale:.1f}" '
                         f'height="10"><title>{value}</title></rect>')
            parts.append(f'<text x="{name_w + value * scale + 4:.1f}" y="{y + j * 12 + 9}">{value}</text>')
    return "".join(parts) + "</svg>"


def channel_chart(rows: list[ChannelCounts], lang: str, t: dict[str, str]) -> str:
    """Per channel: sent (blue) and failed (red) against everything ordered."""
    width, name_w, row_h = 720, 170, 24
    height = max(1, len(rows)) * row_h + 10
    top = max([r.intended for r in rows] + [1])
    scale = (width - name_w - 60) / top
    parts = [f'<svg class="chart" role="img" aria-label="{_e(t["notifications"])}" width="{width}" '
             f'height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">']
    for k, r in enumerate(rows):
        y = 4 + k * row_h
        parts.append(f'<text x="0" y="{y + 13}">{_e(_name(r.channel, lang, t))}</text>')
        parts.append(f'<rect class="bar" x="{name_w}" y="{y}" width="{r.sent * scale:.1f}" height="16">'
                     f'<title>{t["sent"]} {r.sent}</title></rect>')
        parts.append(f'<rect class="fail" x="{name_w + r.sent * scale:.1f}" y="{y}" width="{r.failed * scale:.1f}" '
                     f'height="16"><title>{t["failed"]} {r.failed}</title></rect>')
        parts.append(f'<text x="{name_w + (r.sent + r.failed) * scale + 4:.1f}" y="{y + 13}">'
                     f'{r.sent} / {r.failed}</text>')
    return "".join(parts) + "</svg>"


def area_label(row: AreaCount, lang: str, t: dict[str, str]) -> str:
    if row.code == "-":
        return t["unplaced"]
    first, second = (row.name_zh, row.name_en) if lang == "zh" else (row.name_en, row.name_zh)
    return first or second or row.code


def area_section(report: Sitrep, lang: str, t: dict[str, str]) -> str:
    """Per community (with a chart of incidents, this period against the previous) and per grid of the busiest."""
    if not report.by_community:
        return f"<h2>{t['by_community']}</h2><p>{t['none']}</p>"

    def table(rows: list[AreaCount], first: str) -> str:
        def change(r: AreaCount) -> str:
            return _change(CountRow(key=r.code, current=r.incidents, previous=r.incidents_previous))

        body = "".join(
            f"<tr><td>{_e(area_label(r, lang, t))}</td><td>{_e(r.code)}</td><td class=n>{r.incidents}</td>"
            f"<td class=n>{r.incidents_previous}</td>{change(r)}"
            f"<td class=n>{r.reports}</td><td class=n>{r.reports_previous}</td></tr>" for r in rows)
        return (f"<table><tr><th>{first}</th><th>{t['id']}</th><th>{t['incidents']}</th><th>{t['incidents_prev']}"
                f"</th><th>{t['change']}</th><th>{t['reports']}</th><th>{t['reports_prev']}</th></tr>{body}</table>")

    # A chart only when something was placed: a lone "not placed" bar says nothing the table does not.
    chart_rows = [CountRow(key=area_label(r, lang, t), current=r.incidents, previous=r.incidents_previous)
                  for r in report.by_community] if any(r.code != "-" for r in report.by_community) else []
    grids = (f"<h3>{t['by_grid']}</h3>{table(report.by_grid, t['grid_col'])}" if report.by_grid else "")
    return (f"<h2>{t['by_community']}</h2><p class=meta>{_e(t['area_note'])} · {t['legend']}</p>"
            f"{pair_chart(chart_rows, lang, t, t['by_community']) if chart_rows else ''}"
            f"{table(report.by_community, t['community'])}"
            f"{grids}")


def render_html(report: Sitrep, lang: str = "zh") -> str:
    lang = lang if lang in TEXT else "zh"
    t = TEXT[lang]
    tz = ZoneInfo(report.period.timezone)

    def local(value: Any) -> str:
        return value.astimezone(tz).strftime("%Y-%m-%d %H:%M")

    p = report.period
    delta = report.incidents - report.incidents_previous
    head = (f"<h1>{t['title']}（{t[p.kind]}）</h1>" if lang == "zh" else f"<h1>{t['title']} ({t[p.kind]})</h1>")
    meta = (f'<p class="meta">{t["period"]}: {local(p.start)} – {local(p.end)} · {t["previous"]}: '
            f'{local(p.previous_start)} – {local(p.previous_end)} · {t["tz"]}: {_e(p.timezone)} · '
            f'{t["generated"]}: {local(report.generated_at)}</p>')
    cards = (f'<div class="cards"><div class="card">{t["incidents"]}<b>{report.incidents}</b>{t["prev"]} '
             f'{report.incidents_previous} ({delta:+d})</div><div class="card">{t["reports"]}<b>{report.reports}</b>'
             f'</div><div class="card">{t["still_open"]}<b>{len(report.still_open)}</b></div>'
             f'<div class="card">{t["excluded"]}<b>{report.exercise_excluded}</b></div>'
             f'<div class="card">{t["merged"]}<b>{report.merged_excluded}</b></div></div>')
    by = report.by
    breakdowns = "".join(f"<div><h3>{t[name]}</h3>{_counts_table(rows, lang, t)}</div>" for name, rows in (
        ("by_category", by.category), ("by_subtype", by.subtype), ("by_grade", by.grade), ("by_state", by.state)))
    response_rows = "".join(
        f"<tr><td>{t[r.measure]}</td><td class=n>{r.incidents}</td><td class=n>{r.reached}</td>"
        f"<td class=n>{_num(r.median_min)}</td><td class=n>{_num(r.p90_min)}</td><td class=n>{r.with_target}</td>"
        f"<td class=n>{r.met}</td><td class=n>{r.missed}</td><td>{_e(t['rule_' + r.measure])}</td></tr>"
        for r in report.response_times)
    response = (f"<table><tr><th>{t['measure']}</th><th>{t['n']}</th><th>{t['reached']}</th><th>{t['median']}</th>"
                f"<th>{t['p90']}</th><th>{t['with_target']}</th><th>{t['met']}</th><th>{t['missed']}</th>"
                f"<th>{t['target_rule']}</th></tr>{response_rows}</table>"
                f'<p class="meta">{t["percentiles"]}: {_e(t["percentile_def"])}</p>')
    channel_rows = "".join(
        f"<tr><td>{_e(_name(c.channel, lang, t))}</td><td class=n>{c.intended}</td><td class=n>{c.sent}</td>"
        f"<td class=n>{c.delivered}</td><td class=n>{c.failed}</td><td class=n>{c.pending}</td></tr>"
        for c in report.notifications)
    channels = (f"<table><tr><th>{t['channel']}</th><th>{t['intended']}</th><th>{t['sent']}</th>"
                f"<th>{t['delivered']}</th><th>{t['failed']}</th><th>{t['pending']}</th></tr>{channel_rows}</table>"
                if report.notifications else f"<p>{t['none']}</p>")
    rc, tk, rel = report.roll_call, report.tasks, report.releases
    completion = "—" if rc.completion is None else f"{rc.completion * 100:.1f}%"
    duty = (f"<table><tr><th>{t['roll_call']}</th><th>{t['notified']}</th><th>{t['confirmed']}</th></tr>"
            f"<tr><td class=n>{completion}</td><td class=n>{rc.notified}</td><td class=n>{rc.confirmed}</td></tr>"
            f"</table><table><tr><th>{t['tasks']}</th><th>{t['met']}</th><th>{t['late']}</th><th>{t['missed']}</th>"
            f"<th>{t['not_due']}</th></tr><tr><td class=n>{tk.total}</td><td class=n>{tk.met}</td>"
            f"<td class=n>{tk.late}</td><td class=n>{tk.missed}</td><td class=n>{tk.not_due}</td></tr></table>")
    releases = (f"<table><tr><th>{t['published']}</th><th>{t['with_release']}</th><th>{t['first_release']} "
                f"{t['median']}</th><th>{t['p90']}</th></tr><tr><td class=n>{rel.published}</td>"
                f"<td class=n>{rel.incidents_with_release}</td>"
                f"<td class=n>{_num(rel.time_to_first_release_median_min)}</td>"
                f"<td class=n>{_num(rel.time_to_first_release_p90_min)}</td></tr></table>"
                if rel.available else f"<p>{t['not_available']}</p>")
    open_rows = "".join(
        f"<tr><td>{_e(i.id)}</td><td>{_e(i.title)}</td><td>{_e(i.grade)}</td><td>{_e(_name(i.area, lang, t))}</td>"
        f"<td>{_e(_name(i.state, lang, t))}</td><td>{local(i.received_at)}</td><td class=n>{i.open_hours:g}</td></tr>"
        for i in report.still_open)
    still_open = (f"<table><tr><th>{t['id']}</th><th>{t['event']}</th><th>{t['grade']}</th><th>{t['area']}</th>"
                  f"<th>{t['state']}</th><th>{t['received']}</th><th>{t['open_hours']}</th></tr>{open_rows}</table>"
                  if report.still_open else f"<p>{t['none']}</p>")
    area_rows = "".join(f"<tr><td>{_e(_name(a.area, lang, t))}</td><td class=n>{a.incidents}</td>"
                        f"<td class=n>{a.reports}</td></tr>" for a in report.top_areas)
    areas = (f"<table><tr><th>{t['area']}</th><th>{t['incidents']}</th><th>{t['reports']}</th></tr>{area_rows}"
             f"</table>" if report.top_areas else f"<p>{t['none']}</p>")
    return (f'<!doctype html><html lang="{t["lang"]}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{t['title']} {local(p.start)}</title><style>{CSS}</style></head><body>"
            f"{head}{meta}<h2>{t['summary']}</h2>{cards}"
            f"<h2>{t['over_time']}</h2>{column_chart(report.over_time, t['over_time'])}"
            f"<h2>{t['by_category']}</h2><p class=meta>{t['legend']}</p>"
            f"{pair_chart(by.category, lang, t, t['by_category'])}<div class=grid>{breakdowns}</div>"
            f"<h2>{t['by_area']}</h2>{_counts_table(by.area, lang, t)}"
            f"{area_section(report, lang, t)}"
            f"<h2>{t['response']}</h2>{response}"
            f"<h2>{t['notifications']}</h2>{channel_chart(report.notifications, lang, t)}{channels}"
            f"<h2>{t['roll_call']} · {t['tasks']}</h2>{duty}<h2>{t['releases']}</h2>{releases}"
            f"<h2>{t['still_open']}</h2>{still_open}<h2>{t['top_areas']}</h2>{areas}</body></html>")


def summary_text(report: Sitrep, lang: str = "zh") -> str:
    """A few lines for an e-mail body or a webhook's text: the figures a leader reads first (under 1,600 chars)."""
    t = TEXT[lang if lang in TEXT else "zh"]
    tz = ZoneInfo(report.period.timezone)
    p = report.period
    span = f"{p.start.astimezone(tz):%Y-%m-%d %H:%M} – {p.end.astimezone(tz):%Y-%m-%d %H:%M}"
    times = {r.measure: r for r in report.response_times}
    sent = sum(c.sent for c in report.notifications)
    failed = sum(c.failed for c in report.notifications)
    top = report.top_areas[0] if report.top_areas else None
    lines = [
        f"{t['title']} ({t[p.kind]}) {span} {p.timezone}",
        f"{t['incidents']}: {report.incidents} ({t['prev']} {report.incidents_previous}); {t['reports']}: "
        f"{report.reports}; {t['still_open']}: {len(report.still_open)}",
    ]
    for measure in ("first_notification", "first_acknowledgement", "close"):
        r = times.get(measure)
        if r is not None:
            lines.append(f"{t[measure]}: {t['median']} {_num(r.median_min)} / {t['p90']} {_num(r.p90_min)} min; "
                         f"{t['met']} {r.met}, {t['missed']} {r.missed}")
    lines.append(f"{t['notifications']}: {t['sent']} {sent}, {t['failed']} {failed}; {t['tasks']}: {t['met']} "
                 f"{report.tasks.met}, {t['late']} {report.tasks.late}, {t['missed']} {report.tasks.missed}")
    if top is not None:
        lines.append(f"{t['top_areas']}: {_name(top.area, lang, t)} ({top.reports})")
    busiest = next((a for a in report.by_community if a.code != "-" and a.incidents), None)
    if busiest is not None:
        lines.append(f"{t['by_community']}: {area_label(busiest, lang, t)} {busiest.incidents} "
                     f"({t['prev']} {busiest.incidents_previous})")
    return "\n".join(lines)[:1600]
