"""The parts of docs/benchmarks.md that issue 15 asked for: its targets against this run, the pipeline on SQLite and
PostgreSQL side by side, the worker's profile, the notifier, start-up and Alertmanager side by side. Used by
report.py; each function takes run_all's results (bench name -> its JSON figures, None when it failed or was not run).
"""

from typing import Any

Figures = dict[str, Any]
NOT_RUN = "*Not run, or failed.*"


def _n(value: Any, digits: int = 0) -> str:
    return "n/a" if value is None else f"{value:,.{digits}f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(row) + " |" for row in rows])


def _met(ok: bool | None) -> str:
    return "n/a" if ok is None else ("**met**" if ok else "**not met**")


def _phase(f: Figures | None, system: str, burst: bool) -> Figures | None:
    for r in (f or {}).get("results", []):
        if r["system"] == system and r["phase"].startswith("burst") == burst:
            return r
    return None


def _cpu_burst(f: Figures | None) -> float | None:
    p = (f or {}).get("pipeline")
    return p["cpu_worker_s"] / p["n"] * 1000 if p else None


def _ratio_forward(f: Figures | None) -> float | None:
    p, fwd = (f or {}).get("pipeline"), (f or {}).get("forward")
    return p["rate"] / fwd["rate"] if p and fwd and fwd["rate"] else None


def targets_section(results: dict[str, Figures | None]) -> str:
    """Issue 15's table of targets, with this run's figure on each database."""
    rows: list[list[str]] = []

    def both(label: str, name: str, fn: Any, fmt: Any, target: str, ok: Any) -> None:
        values = [fn(results.get(name)), fn(results.get(f"{name}_pg"))]
        shown = [fmt(v) if v is not None else "n/a" for v in values]
        rows.append([label, shown[0], shown[1], target, _met(ok(values[0]) if values[0] is not None else None)])

    both("worker CPU per grade III fire incident (burst)",
         "pipeline", _cpu_burst, lambda v: f"{v:.1f} ms", "≤ 5 ms on SQLite", lambda v: v <= 5)
    both("worker CPU per incident, steady run",
         "pipeline", lambda f: ((f or {}).get("steady") or {}).get("cpu_worker_ms_per_incident"),
         lambda v: f"{v:.1f} ms", "(≤ 5 ms)", lambda v: v <= 5)
    both("steady incidents/s: intake → notified p50 / p99", "pipeline", lambda f: (f or {}).get("steady"),
         lambda s: f"{s['rate']:g}/s: {_n(s['p50_ms'])} / {_n(s['p99_ms'])} ms", "≤ 60 / 200 ms at 50/s",
         lambda s: s["p50_ms"] <= 60 and s["p99_ms"] <= 200)
    both("pipeline incidents/s ÷ faust one-hop forward",
         "pipeline", _ratio_forward, lambda v: f"{v:.3f}", "≥ 0.30", lambda v: v >= 0.30)
    both("one Alertmanager alert → one webhook, steady, p50 / p99", "versus", lambda f: _phase(f, "pingan", False),
         lambda r: f"{r['phase']}: {_n(r['p50_ms'], 1)} / {_n(r['p99_ms'], 1)} ms",
         "≤ 30 / 100 ms at 100/s", lambda r: r["rate"] >= 100 and r["p50_ms"] <= 30 and r["p99_ms"] <= 100)
    both("Alertmanager itself, same phase", "versus", lambda f: _phase(f, "alertmanager", False),
         lambda r: f"{_n(r['p50_ms'], 1)} / {_n(r['p99_ms'], 1)} ms", "(the peer)", lambda r: None)
    both("alert burst → the last webhook", "versus", lambda f: _phase(f, "pingan", True),
         lambda r: f"{r['alerts']:,} alerts: {r['to_last_webhook_s']:.2f} s (Alertmanager "
                   f"{_phase(results.get('versus'), 'alertmanager', True)['to_last_webhook_s']:.2f} s)"
         if _phase(results.get("versus"), "alertmanager", True) else f"{r['to_last_webhook_s']:.2f} s",
         "≤ 10 s for 2,000", lambda r: r["alerts"] >= 2000 and r["to_last_webhook_s"] <= 10 and r["duplicates"] == 0)
    both("SMS to as many recipients, provider delay 250 ms: handed over",
         "notifier", lambda f: f, lambda f: f"{f['n']:,} in {f['elapsed_s']:.2f} s, {f['twice']} twice",
         "1,000 in ≤ 10 s, none twice", lambda f: f["n"] >= 1000 and f["elapsed_s"] <= 10 and f["twice"] == 0)
    both("hotline surge: signed SMS accepted, then drained", "surge", lambda f: f,
         lambda f: f"{f['ok']:,} of {f['target']['reports']:,} in {f['target']['seconds']:g} s; "
                   f"{f['ok'] - f['triaged']} not triaged; drained {f['drain_s']:.1f} s after",
         "50,000 in 60 s, none lost, drained ≤ 30 s after",
         lambda f: f["ok"] >= 50_000 and f["ok"] == f["triaged"] and f["drain_s"] <= 30)
    start = results.get("startup")
    if start:
        rows.append(["first report after \"ready\" → delivered", f"{start['up']['first_ms']:.0f} ms "
                     f"(tenth {start['up']['tenth_ms']:.0f} ms)", "—", "≤ 0.5 s, as fast as the tenth",
                     _met(start["up"]["first_ms"] <= 500)])
        rows.append(["`pingan --help` wall time", f"{start['help']['median_s'] * 1000:.0f} ms median", "—",
                     "≤ 0.3 s", _met(start["help"]["median_s"] <= 0.3)])
    return _table(["figure", "SQLite", "PostgreSQL", "issue 15's target", "this run"], rows)


def _stages(s: Figures | None) -> str:
    if not s or not s.get("stages"):
        return "n/a"
    return "; ".join(f"{name} {v['p50_ms']:.0f} / {v['p90_ms']:.0f}" for name, v in s["stages"].items())


def databases_section(results: dict[str, Figures | None]) -> str:
    sq, pg = results.get("pipeline"), results.get("pipeline_pg")
    if not sq and not pg:
        return NOT_RUN
    rows = []

    def row(label: str, fn: Any) -> None:
        cells = []
        for f in (sq, pg):
            try:
                cells.append(fn(f) if f else "n/a")
            except (KeyError, TypeError):
                cells.append("n/a")
        rows.append([label, *cells])

    row("burst: incidents/s", lambda f: f"{_n(f['pipeline']['rate'], 1)} ({f['pipeline']['n']:,} at once)")
    row("burst: intake → notified p50 / p99",
        lambda f: f"{f['pipeline']['p50_s']:.2f} / {f['pipeline']['p99_s']:.2f} s")
    row("burst: worker CPU per incident", lambda f: f"{_cpu_burst(f):.1f} ms")
    row("steady: rate, sent / notified", lambda f: f"{f['steady']['rate']:g}/s × {f['steady']['duration_s']:g} s, "
        f"{f['steady']['sent']:,} / {f['steady']['notified']:,}")
    row("steady: intake → notified p50 / p95 / p99 / max", lambda f: f"{_n(f['steady']['p50_ms'])} / "
        f"{_n(f['steady']['p95_ms'])} / {_n(f['steady']['p99_ms'])} / {_n(f['steady']['max_ms'])} ms")
    row("steady: by stage, p50 / p90 ms", lambda f: _stages(f["steady"]))
    row("steady: worker CPU per incident", lambda f: f"{f['steady']['cpu_worker_ms_per_incident']:.1f} ms "
        f"(other processes {f['steady']['cpu_other_s']:.0f} CPU-s)")
    row("faust one-hop forward; pipeline ÷ forward", lambda f: f"{_n(f['forward']['rate'])} msgs/s; "
        f"{_ratio_forward(f):.3f}")
    cmd = " ".join(w for w in str((sq or pg)["command"]).split() if not w.startswith(("--json", "/tmp")))
    return f"Command (each database): `{cmd}` (PostgreSQL: `--db-url` a scratch database).\n\n" + \
        _table(["", "SQLite (WAL)", "PostgreSQL 15"], rows)


def profile_section(results: dict[str, Figures | None]) -> str:
    prof = ((results.get("pipeline") or {}).get("steady") or {}).get("profile")
    if not prof:
        return "*No profile in this run (py-spy missing, or the pipeline bench not run).*"
    if prof.get("error"):
        return f"*No profile: {prof['error']}*"
    head = (f"py-spy `--gil` over the SQLite steady run's worker: {prof['samples']:,} samples with the GIL in "
            f"{prof['window_s']:.0f} s at 100 Hz, so the interpreter was busy {prof['gil_share_of_one_core']:.0%} of "
            "one core.")
    pkgs = _table(["innermost frame's package", "share of the GIL samples"],
                  [[f"`{name}`", f"{frac:.1%}"] for name, frac in prof["self_by_package"][:12]])
    ours = _table(["Pingan function (callees included)", "share"],
                  [[f"`{name}`", f"{frac:.1%}"] for name, frac in prof["inclusive_pingan"][:16]])
    return f"{head}\n\n{pkgs}\n\n{ours}"


def notifier_section(results: dict[str, Figures | None]) -> str:
    rows = []
    for name, db in (("notifier", "SQLite"), ("notifier_pg", "PostgreSQL")):
        f = results.get(name)
        if f:
            rows.append([db, f"{f['n']:,} in **{f['elapsed_s']:.2f} s** ({_n(f['rate_per_s'])}/s)",
                         f"{f['delay_s'] * 1000:.0f} ms, 429 beyond {f['cap']}, concurrency {f['concurrency']}",
                         str(f["throttled"]), f"{f['messages']:,} at the server, {f['twice']} twice",
                         f"{f['sequential_s_per_send'] * 1000:.0f} ms a send: {f['sequential_projected_s']:.0f} s"])
    if not rows:
        return NOT_RUN
    return _table(["database", "handed over", "provider", "throttled answers", "checked",
                   "one after the other (before issue 15)"], rows)


def startup_section(results: dict[str, Figures | None]) -> str:
    f = results.get("startup")
    if not f:
        return NOT_RUN
    up = f["up"]
    return _table(["figure", "this run", "target"], [
        ["`pingan --help` wall time", f"{f['help']['median_s'] * 1000:.0f} ms median "
         f"({f['help']['max_s'] * 1000:.0f} ms max)", "≤ 0.3 s"],
        ["`pingan timeline NOPE` (settings, store, one query)",
         f"{f['timeline']['median_s'] * 1000:.0f} ms median", ""],
        ["`pingan up` → its \"ready\" line", f"{up['ready_s']:.1f} s", ""],
        ["first report after \"ready\" → delivered", f"{up['first_ms']:.0f} ms", "≤ 0.5 s"],
        ["tenth report / median", f"{up['tenth_ms']:.0f} ms / {up['median_ms']:.0f} ms", "as fast as the first"],
    ])


def versus_section(results: dict[str, Figures | None]) -> str:
    parts = []
    for name, db in (("versus", "SQLite"), ("versus_pg", "PostgreSQL")):
        f = results.get(name)
        if not f:
            continue
        rows = []
        for r in f["results"]:
            parts_cpu = ", ".join(f"{k} {v:.1f}" for k, v in (r.get("cpu_parts_s") or {}).items())
            rows.append([r["phase"], r["system"], f"{r['delivered']:,}/{r['alerts']:,}",
                         f"{_n(r['p50_ms'], 1)} / {_n(r['p99_ms'], 1)} ms", f"{r['to_last_webhook_s']:.2f} s",
                         f"{r['duplicates']}, {r['non_2xx']}",
                         f"{r['cpu_s']:.1f}" + (f" ({parts_cpu})" if parts_cpu else ""), f"{r['cpu_other_s']:.0f}"])
        parts.append(f"Pingan on {db}, {f['alertmanager']}; `pingan up` ready after {f['pingan_ready_s']:.1f} s.\n\n"
                     + _table(["phase", "system", "delivered", "p50 / p99", "last webhook", "duplicates, non-2xx",
                               "CPU-s", "others' CPU-s"], rows))
    return "\n\n".join(parts) or NOT_RUN
