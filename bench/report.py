"""docs/benchmarks.md from run_all.py's figures: bench/benchmarks_template.md with its {{placeholders}} filled."""

import os
from pathlib import Path
from typing import Any

import report_issue15 as i15

TEMPLATE = Path(__file__).resolve().parent / "benchmarks_template.md"
Figures = dict[str, Any]


def _n(value: Any, digits: int = 0) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def _ratio(value: float | None, ref: float) -> str:
    if value is None or not ref:
        return "n/a"
    r = value / ref
    return f"{r:.4f} (1 : {1 / r:,.0f})" if 0 < r < 1 else f"{r:,.2f}"


def _span(pair: list[int]) -> str:
    return f"{pair[0]:,}" if pair[0] == pair[1] else f"{pair[0]:,}–{pair[1]:,}"


def _cmd(f: Figures) -> str:
    """The bench's own command line as run_all ran it, without its --json file."""
    words = str(f["command"]).split()
    if "--json" in words:
        i = words.index("--json")
        del words[i:i + 2]
    return f"Command: `{' '.join(words)}`."


def _table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _other_share(results: dict[str, Figures | None]) -> list[tuple[str, float]]:
    """Share of the machine's CPU that processes outside the bench used, per bench phase that measured it."""
    cores = os.cpu_count() or 1
    out = []
    pipe = results.get("pipeline")
    if pipe and pipe["pipeline"] and pipe["pipeline"].get("cpu_other_s") is not None:
        out.append(("pipeline", pipe["pipeline"]["cpu_other_s"] / (pipe["pipeline"]["seen_s"] * cores)))
    steady = (pipe or {}).get("steady")
    if steady and steady.get("cpu_other_s") is not None:
        out.append(("pipeline steady", steady["cpu_other_s"] / (steady["seen_s"] * cores)))
    intake = results.get("intake")
    for e in (intake or {}).get("endpoints", []):
        out.append((f"intake {e['name'].split(' (')[0]}", e["cpu_other_s"] / (e["elapsed_s"] * cores)))
    surge = results.get("surge")
    if surge:
        out.append(("surge", surge["cpu"]["other_s"] / (surge["cpu"]["wall_s"] * cores)))
    return [(name, max(0.0, share)) for name, share in out]  # a busy-time sample can come out a hair below zero


def run_section(run: Figures, results: dict[str, Figures | None], raw: float) -> str:
    m = run["machine"]
    shares = _other_share(results)
    busiest = max((s for _, s in shares), default=0.0)
    lines = [
        f"- **Date:** {run['started_at']:%Y-%m-%d %H:%M} UTC; the whole run took {run['duration_s'] / 60:.1f} min.",
        f"- **Command:** `{run['command']}` (from the repository root).",
        f"- **Machine:** {m['cpu']}, {m['cores']} cores, {m['memory']} memory; {m['kernel']}; {m['python']}; "
        f"{m['tansu']} (embedded, `memory://`); {m['fsync']}.",
        f"- **Packages:** {m['libraries']}.",
        f"- **Load before:** `{run['load_before']}`",
        f"- **Load after:** `{run['load_after']}`",
    ]
    if busiest > 0.05:
        lines.append(
            f"- **Shared machine:** other processes (other engineers' test runs) used up to {busiest:.0%} of the "
            "machine's CPU during the benches (" + ", ".join(f"{k} {s:.0%}" for k, s in shares) + "). Every figure "
            "below was measured with them running; on an idle machine expect more.")
    else:
        lines.append("- **Machine load:** other processes used at most "
                     f"{busiest:.0%} of the CPU during the benches.")
    if run["failed"]:
        lines.append(f"- **Failed:** {', '.join(run['failed'])} (no figures; see run_all's output).")
    lines += [f"- {note}" for note in run["notes"]]
    lines.append(f"- **Yardstick:** the broker's raw rate, {_n(raw)} msgs/s (mean of the two measurements below).")
    return "\n".join(lines)


def raw_section(run: Figures) -> str:
    rows = []
    for when, r in (("before the benches", run["raw_before"]), ("after the benches", run["raw_after"])):
        rows.append([when, f"{r['n']:,} × {r['bytes']} B", _n(r["produce_rate"]), _n(r["consume_rate"]),
                     f"**{_n(r['rate'])}**", _n(r["us_per_msg"], 1), _n(r["broker_cpu_s"], 2)])
    return _table(["measured", "messages", "produce/s (acks=all)", "consume/s", "in and out, msgs/s",
                   "µs per message", "broker CPU s"], rows)


def pipeline_section(f: Figures | None, raw: float) -> str:
    if not f:
        return "*Not run, or failed.*"
    p, fwd, steady = f["pipeline"], f.get("forward"), f.get("steady")
    rows = [] if not p else [
        ["pipeline throughput", f"**{_n(p['rate'], 1)} incidents/s** ({p['n']:,} in {p['elapsed_s']:.1f} s, "
         "first produce to last `notified`)", _ratio(p["rate"], raw)],
        ["latency intake → `notified`", f"p50 {p['p50_s']:.1f} s, p99 {p['p99_s']:.1f} s, max {p['max_s']:.1f} s", ""],
        ["stages done after", f"triage {p['triage_done_s']:.1f} s, response {p['plan_done_s']:.1f} s, notifier "
         f"{p['notified_done_s']:.1f} s (all {p['n']:,} produced in {p['produce_s']:.1f} s)", ""],
        ["CPU during the run", f"worker {p['cpu_worker_s']:.0f} s ({p['cpu_worker_s'] / p['n'] * 1000:.1f} ms per "
         f"incident), broker {p['cpu_broker_s']:.0f} s, bench {p['cpu_bench_s']:.1f} s, other processes "
         f"{p['cpu_other_s']:.0f} s, in {p['seen_s']:.0f} s of wall time on {os.cpu_count()} cores", ""],
    ]
    if steady:
        rows += steady_rows(steady)
    if fwd:
        rows += [
            ["faust one-hop forward", f"**{_n(fwd['rate'])} msgs/s** ({fwd['n']:,} × 300 B in {fwd['elapsed_s']:.2f} s"
             f"; worker CPU {fwd['cpu_worker_s'] / fwd['n'] * 1000:.2f} ms per message)", _ratio(fwd["rate"], raw)],
        ]
        if p:
            rows.append(["pipeline ÷ forward", _ratio(p["rate"], fwd["rate"]), ""])
    return f"{_cmd(f)} Database: {f['database']}.\n\n" + _table(["", "figure", "÷ raw broker rate"], rows)


def steady_rows(s: Figures) -> list[list[str]]:
    """The steady-rate run (issue 15): a fixed rate below capacity, so latency is not queueing behind a burst."""
    notified = f"{s['notified']:,}" if s["notified"] == s["sent"] else f"**only {s['notified']:,}**"
    return [
        [f"steady {s['rate']:g} incidents/s for {s['duration_s']:g} s",
         f"{s['sent']:,} sent, {notified} notified; achieved rate {_n(s['achieved_rate'], 1)}/s (sends behind "
         f"schedule at most {_n(s['send_late_max_ms'], 1)} ms)", ""],
        ["steady: latency intake → `notified`", f"**p50 {_n(s['p50_ms'])} ms, p95 {_n(s['p95_ms'])} ms, "
         f"p99 {_n(s['p99_ms'])} ms, max {_n(s['max_ms'])} ms**", ""],
        ["steady: worker CPU", f"**{_n(s['cpu_worker_ms_per_incident'], 1)} ms per incident** (its process tree, "
         f"{s['cpu_worker_s']:.1f} s); broker {s['cpu_broker_s']:.1f} s, bench {s['cpu_bench_s']:.1f} s, other "
         f"processes {s['cpu_other_s']:.1f} s, in {s['seen_s']:.0f} s of wall time", ""],
    ]


def intake_section(f: Figures | None, raw: float) -> str:
    if not f:
        return "*Not run, or failed.*"
    rows = []
    for e in f["endpoints"]:
        accept = f["raw_accept"][e["raw_key"]]
        refused = f", {e['non_2xx']} non-2xx, {e['errors']} errors" if e["non_2xx"] or e["errors"] else ""
        rows.append([f"`{e['name'].split(' (')[0]}`", f"**{_n(e['rate'])} req/s**{refused}",
                     f"{e['p50_ms']:.1f} / {e['p99_ms']:.1f} ms", f"{e['api_cpu_ms_per_req']:.2f} ms",
                     f"{_n(accept['rate'])} ({e['vs_raw_accept']:.2f})", _ratio(e["rate"], raw)])
    head = (f"{_cmd(f)} Database: {f['database']}; {f['concurrency']} concurrent clients "
            f"({f['client']} HTTP/1.1 keep-alive), "
            f"{f['duration_s']:g} s per endpoint; check: {f['check']}. Store.accept() from "
            f"{f['raw_accept_threads']['threads']} threads: {_n(f['raw_accept_threads']['rate'])}/s.\n\n")
    return head + _table(["endpoint", "throughput (2xx)", "p50 / p99", "api CPU per request",
                          "Store.accept() in a loop, /s (endpoint ÷ it)", "÷ raw broker rate"], rows)


def match_section(f: Figures | None, raw: float) -> str:
    if not f:
        return "*Not run, or failed.*"
    raw_us = 1e6 / raw if raw else float("nan")
    rows = [[f"{r['plans']:,} (+{r['shipped_plans']} shipped)", str(r["index_keys"]), f"{r['build_ms']:.1f} ms",
             f"**{r['us_per_match']:.2f}**", f"{r['us_per_match'] / raw_us:.3f}", f"{r['hit_rate']:.0%}"]
            for r in f["sizes"]]
    return (f"{_cmd(f)} Raw broker cost per message: {raw_us:.0f} µs.\n\n"
            + _table(["plans", "index keys", "index build", "µs per match", "÷ raw µs per message",
                      "incidents matched"], rows))


def surge_section(f: Figures | None, raw: float) -> str:
    if not f:
        return "*Not run, or failed.*"
    t = f["target"]
    lag = f["peak_lag"]
    rpi = f["reports_per_incident"] or {}
    non_2xx = ", ".join(f"{k}: {v}" for k, v in f["non_2xx"].items()) or "none"
    errors = ", ".join(f"{k}: {v}" for k, v in f["errors"].items()) or "none"
    cpu = f["cpu"]
    rows = [
        ["offered", f"{t['reports']:,} signed SMS webhooks in {t['seconds']:g} s ({_n(t['rate'])}/s) about "
         f"{f['events']} events ({_span(f['reports_per_event'])} reports each), "
         f"{t['concurrency']} connections", _ratio(t["rate"], raw)],
        ["posted", f"{f['posted']:,}" + ("" if f["send_all"] else
                                         f"; **{f['not_sent']:,} not sent**: the window closed before a connection "
                                         "was free for them"), ""],
        ["answered 200 with a reference", f"**{f['ok']:,}** ({f['ok_within_window']:,} within the window); "
         f"non-2xx {non_2xx}; errors {errors}", ""],
        ["achieved rate", f"**{_n(f['achieved_rate'], 1)} reports/s** ({f['ok']:,} in {f['post_s']:.1f} s)",
         _ratio(f["achieved_rate"], raw)],
        ["answer latency", f"p50 {f['latency_p50_s'] * 1000:.0f} ms, p99 {f['latency_p99_s'] * 1000:.0f} ms, "
         f"max {f['latency_max_s'] * 1000:.0f} ms; sends behind schedule by p50 {f['send_late_p50_s']:.1f} s, "
         f"max {f['send_late_max_s']:.1f} s", ""],
        ["incidents created", f"**{f['incidents_created']:,}** (outbox rows {f['accepted_in_store']:,}, triaged "
         f"{f['triaged']:,}: " + ", ".join(f"{k} {v:,}" for k, v in sorted(f["outcomes"].items())) + ")", ""],
        ["correlation ratio", f"**{f['correlation_ratio']:.4f}** (correlated ÷ triaged reports); reports per "
         f"incident min {rpi.get('min')}, median {rpi.get('median')}, max {rpi.get('max')}", ""],
        ["peak lag", f"**{lag['incidents.raw']['value']:,} reports** accepted but not triaged, "
         f"{lag['incidents.raw']['at_s']:.0f} s after the start; incidents without a response "
         f"{lag['incidents']['value']:,}; notification intents not yet sent {lag['notifications']['value']:,}", ""],
        ["time to drain", f"**{f['drain_s']:.1f} s** from the last 200 to the last report triaged", ""],
        ["triage rate", f"{_n(f['triage_rate'], 1)} reports/s (first to last triage)", _ratio(f["triage_rate"], raw)],
        ["CPU", f"`pingan up` (worker + api) {cpu['pingan_up_s']:.0f} s, broker {cpu['broker_s']:.0f} s, bench "
         f"{cpu['bench_s']:.1f} s, other processes {cpu['other_s']:.0f} s, in {cpu['wall_s']:.0f} s of wall time", ""],
        ["what the surge set off", ", ".join(f"{k} {v:,}" for k, v in sorted(f["actions"].items())) + " (log "
         "entries); ledger " + ", ".join(f"{k} {v:,}" for k, v in sorted(f["ledger"].items())), ""],
    ]
    series = " ".join(f"{t:g}s:{v}" for t, v in f["lag_series"])
    return (f"{_cmd(f)}\n\n" + _table(["", "figure", "÷ raw broker rate"], rows)
            + f"\n\nLag (accepted, not triaged) over time, seconds after the start: {series}")


def render(run: Figures, results: dict[str, Figures | None]) -> str:
    raw = (run["raw_before"]["rate"] + run["raw_after"]["rate"]) / 2
    parts = {
        "run": run_section(run, results, raw),
        "raw": raw_section(run),
        "pipeline": pipeline_section(results.get("pipeline"), raw),
        "intake": intake_section(results.get("intake"), raw) + (
            "\n\n**On PostgreSQL** (`--db-url` a scratch database):\n\n" + intake_section(results["intake_pg"], raw)
            if results.get("intake_pg") else ""),
        "match": match_section(results.get("match"), raw),
        "surge": surge_section(results.get("surge"), raw) + (
            "\n\n**On PostgreSQL** (`--db-url` a scratch database):\n\n" + surge_section(results["surge_pg"], raw)
            if results.get("surge_pg") else ""),
        "targets": i15.targets_section(results),
        "databases": i15.databases_section(results),
        "profile": i15.profile_section(results),
        "notifier": i15.notifier_section(results),
        "startup": i15.startup_section(results),
        "versus": i15.versus_section(results),
    }
    text = TEMPLATE.read_text(encoding="utf-8")
    for key, value in parts.items():
        text = text.replace("{{" + key + "}}", value)
    return text
