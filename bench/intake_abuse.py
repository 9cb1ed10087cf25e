"""What one abusive body costs the API: a CAP message of N empty <info/> and an Alertmanager webhook of N alerts, each
POSTed to a real `pingan api` while two probes keep asking it: GET /healthz and a signed Twilio SMS report.

Run by hand (pytest never collects it):

    python bench/intake_abuse.py                                  # 1000,2000,4000,50000 infos; 10000 alerts
    python bench/intake_abuse.py --infos 50000 --alerts 10000 --timeout 60
    python bench/intake_abuse.py --infos 50000 --alerts 0 --env PINGAN_CAP_MAX_INFOS=100000   # past the limit

For each body: a fresh api (one a body stalled must not spoil the next), warmed up by one SMS (the classifier's
tokenizer loads then), then the body POSTed once with a client timeout of --timeout seconds; meanwhile each probe
asks every 100 ms. Reported: the body's answer (status and time, or "timeout"), and each probe's longest wait while
the body was in flight (a probe still waiting when the body was answered or gave up counts with its wait so far).
No broker: intake only commits to the store's outbox.
"""

import argparse
import secrets
import shlex
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from common import BenchError, Child, clean_env, free_port, wait_for
from twilio.request_validator import RequestValidator

TOKEN = "bench"
TWILIO_TOKEN = "bench-twilio-auth-token-0123456789"
SMS_PATH = "/v1/intake/twilio/sms"
PROBE_EVERY_S = 0.1


def cap_body(infos: int) -> bytes:
    head = ('<?xml version="1.0" encoding="UTF-8"?>\n<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">'
            f"<identifier>abuse-{secrets.token_hex(4)}</identifier><sender>bench@example.org</sender>"
            "<sent>2026-08-01T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType>"
            "<scope>Public</scope>")
    return (head + "<info/>" * infos + "</alert>").encode()


def alertmanager_body(alerts: int) -> bytes:
    # As small as an alert can be, so that 10,000 fit under the 1 MiB body limit.
    items = ",".join(f'{{"labels":{{"i":"{i}"}}}}' for i in range(alerts))
    return (f'{{"version":"4","groupKey":"abuse-{secrets.token_hex(4)}","status":"firing",'
            f'"receiver":"bench","alerts":[{items}]}}').encode()


@dataclass
class Probe:
    """Asks the api over and over in a thread; the longest wait, counting a request still in flight."""

    name: str
    ask: Callable[[], int]
    waits: list[float] = field(default_factory=list)
    failures: int = 0
    _inflight_since: float | None = None
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name=f"probe-{self.name}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            self._inflight_since = started = time.monotonic()
            try:
                ok = self.ask() == 200
            except httpx.HTTPError:
                ok = False
            self.waits.append(time.monotonic() - started)
            self._inflight_since = None
            self.failures += not ok
            self._stop.wait(PROBE_EVERY_S)

    def stop(self) -> float:
        """The longest wait so far (a request still in flight counts), and the probe told to stop."""
        now, inflight = time.monotonic(), self._inflight_since
        longest = max([*self.waits, now - inflight if inflight is not None else 0.0])
        self._stop.set()
        return longest


def api_env(data_dir: Path, port: int, extra: dict[str, str]) -> dict[str, str]:
    return clean_env(PINGAN_DATA_DIR=str(data_dir), PINGAN_HTTP_PORT=str(port), PINGAN_LOG_LEVEL="WARNING",
                     PINGAN_INTAKE_TOKENS=f"api={TOKEN},cap={TOKEN}|*,alertmanager={TOKEN}",
                     PINGAN_INTAKE_RATE_PER_MINUTE="100000000", PINGAN_TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
                     PINGAN_HEARTBEAT_INTERVAL_S="0", **extra)


def signed_sms(url: str, timeout_s: float) -> int:
    form = {"MessageSid": "SM" + secrets.token_hex(16), "AccountSid": "AC" + "0" * 32, "From": "+8613900000001",
            "To": "+8612345", "Body": "唐家社区仓库着火了 bench", "NumMedia": "0"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(url + SMS_PATH, form)
    return httpx.post(url + SMS_PATH, data=form, headers={"X-Twilio-Signature": signature},
                      timeout=timeout_s).status_code


def one_case(name: str, path: str, body: bytes, content_type: str, args: argparse.Namespace, tmp: Path,
             extra_env: dict[str, str]) -> dict[str, object]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    api = Child("api", [sys.executable, "-m", "pingan.cli.main", "api"],
                api_env(tmp / name, port, extra_env), tmp / f"{name}.log")
    try:
        wait_for(lambda: _healthy(url), 60, "the api to answer /healthz", alive=api)
        if signed_sms(url, 60) != 200:  # the warm-up: the SMS classifier loads its tokenizer here
            raise BenchError(f"the warm-up SMS was refused\n{api.log_tail()}")
        probes = [Probe("healthz", lambda: httpx.get(url + "/healthz", timeout=args.timeout).status_code),
                  Probe("sms", lambda: signed_sms(url, args.timeout))]
        for probe in probes:
            probe.start()
        time.sleep(0.3)  # both probes asking before the body goes
        started = time.monotonic()
        try:
            response = httpx.post(url + path, content=body, timeout=args.timeout,
                                  headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": content_type})
            answer = f"{response.status_code}"
            detail = response.text[:160].replace("\n", " ")
        except httpx.TimeoutException:
            answer, detail = "timeout", f"no answer within {args.timeout:g} s"
        took = time.monotonic() - started
        waits = {probe.name: probe.stop() for probe in probes}
        return {"case": name, "bytes": len(body), "answer": answer, "seconds": took, "detail": detail,
                "healthz_max_s": waits["healthz"], "sms_max_s": waits["sms"],
                "probe_failures": sum(p.failures for p in probes)}
    finally:
        api.stop(5)


def _healthy(url: str) -> bool:
    try:
        return httpx.get(url + "/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--infos", default="1000,2000,4000,50000", help="CAP bodies: empty <info/> counts")
    parser.add_argument("--alerts", default="10000", help="Alertmanager bodies: alert counts (0: none)")
    parser.add_argument("--timeout", type=float, default=60.0, help="client timeout per request, seconds")
    parser.add_argument("--env", action="append", default=[], help="KEY=VALUE for the api (repeatable)")
    args = parser.parse_args(argv)
    extra = dict(pair.split("=", 1) for pair in args.env)
    cases = [(f"cap-{n}-infos", "/v1/intake/cap", cap_body(n), "application/cap+xml")
             for n in (int(x) for x in args.infos.split(",") if x.strip()) if n > 0]
    cases += [(f"alertmanager-{n}-alerts", "/v1/intake/alertmanager", alertmanager_body(n), "application/json")
              for n in (int(x) for x in args.alerts.split(",") if x.strip()) if n > 0]
    tmp = Path(tempfile.mkdtemp(prefix="pingan-bench-abuse-"))
    print(f"command: {shlex.join(['python', *sys.argv])}\ntemp dir: {tmp}", flush=True)
    header = f"{'body':<26}{'size':>10}  {'answer':>8}{'after':>10}  {'/healthz max':>13}{'signed SMS max':>16}"
    rows = []
    for name, path, body, content_type in cases:
        row = one_case(name, path, body, content_type, args, tmp, extra)
        rows.append(row)
        print(f"{name}: {row['answer']} after {row['seconds']:.2f} s; /healthz max {row['healthz_max_s']:.3f} s, "
              f"SMS max {row['sms_max_s']:.3f} s; {row['detail']}", flush=True)
    print("\n" + header)
    for r in rows:
        print(f"{r['case']:<26}{r['bytes']:>10,}  {r['answer']:>8}{r['seconds']:>9.2f}s  "
              f"{r['healthz_max_s']:>12.3f}s{r['sms_max_s']:>15.3f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
