"""py-spy over a bench's worker (issue 15: "the gap explained with a profile of what bounds it").

    python bench/pyspy.py summarize /tmp/worker.txt      # a summary of a raw py-spy record

Profiler(pid, out).start() runs `py-spy record --gil --nonblocking --format raw` on a running process until stop():
- `--gil` samples only the thread that holds the GIL, so the profile is where the worker's Python time goes (the
  worker is one interpreter: its agents, relay, scheduler and notifier threads all take turns on that one lock), and
  its sample count over the window is the share of one core the interpreter kept busy;
- `--nonblocking` reads the stacks without stopping the process: a blocking 200 Hz py-spy slowed the worker so much
  that the bench's p50 went from 0.6 s to 8 s (2026-12-05);
- 100 samples a second.

summarize() groups the samples three ways: by the package of the innermost frame (where the time is spent: sqlalchemy,
pydantic, kafka…), by innermost function, and by Pingan function including its callees (which stage pays for it).
"""

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

RATE_HZ = 100
OURS = ("streams/", "store/", "handlers/", "schemas/", "core/", "web/")  # a Pingan frame's file, as py-spy names it
_LINE = re.compile(r":\d+\)")


class Profiler:
    """py-spy record on `pid`, written to `out` when stopped. A machine without py-spy gets a note, not a failure."""

    def __init__(self, pid: int, out: Path) -> None:
        self.pid, self.out = pid, out
        self.proc: subprocess.Popen[bytes] | None = None
        self.error: str | None = None
        self.log = out.with_suffix(".log")

    def start(self) -> "Profiler":
        exe = shutil.which("py-spy")
        if exe is None:
            self.error = "py-spy is not installed (pip install py-spy)"
            return self
        with self.log.open("wb") as log:
            self.proc = subprocess.Popen(
                [exe, "record", "-p", str(self.pid), "--gil", "--nonblocking", "-r", str(RATE_HZ), "--format", "raw",
                 "-o", str(self.out)], stdout=log, stderr=subprocess.STDOUT)
        return self

    def stop(self, seconds: float) -> dict[str, Any]:
        """Stops recording (py-spy writes its file on SIGINT); the summary, with the window's length."""
        if self.proc is None:
            return {"error": self.error}
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        if not self.out.exists():
            tail = self.log.read_text(errors="replace")[-300:] if self.log.exists() else ""
            return {"error": f"py-spy wrote no profile: {tail.strip()}"}
        summary = summarize(self.out)
        summary["window_s"] = seconds
        summary["gil_share_of_one_core"] = summary["samples"] / (seconds * RATE_HZ) if seconds > 0 else None
        summary["raw"] = str(self.out)
        return summary


def _frames(path: Path) -> list[tuple[list[str], int]]:
    stacks = []
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count = line.rpartition(" ")
        if not count.isdigit():
            continue
        frames = [_LINE.sub(")", f) for f in stack.split(";") if not f.startswith(("thread (", "process "))]
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def _package(frame: str) -> str:
    found = re.search(r"\(([^)]*)\)", frame)
    where = found.group(1) if found else "?"
    return where.split("/")[0] + "/" if "/" in where else where


def summarize(path: Path, top: int = 15) -> dict[str, Any]:
    stacks = _frames(path)
    total = sum(n for _, n in stacks) or 1
    by_package: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    for frames, n in stacks:
        by_package[_package(frames[-1])] += n
        by_function[frames[-1]] += n
        for frame in set(frames):
            if any(f"({part}" in frame for part in OURS):
                ours[frame] += n

    def share(counter: Counter[str], k: int) -> list[list[Any]]:
        return [[name, round(n / total, 4)] for name, n in counter.most_common(k)]

    return {"samples": total if stacks else 0, "self_by_package": share(by_package, top),
            "self_by_function": share(by_function, top), "inclusive_pingan": share(ours, top + 10)}


def render(summary: dict[str, Any], top: int = 12) -> str:
    """Plain text, for a bench's console output."""
    if summary.get("error"):
        return f"profile: {summary['error']}"
    lines = [f"profile: {summary['samples']} samples with the GIL in {summary.get('window_s', 0):.0f} s "
             f"({(summary.get('gil_share_of_one_core') or 0):.0%} of one core); raw {summary.get('raw', '')}"]
    for title, key in (("where (innermost frame's package)", "self_by_package"),
                       ("Pingan functions, callees included", "inclusive_pingan")):
        lines.append(f"  {title}:")
        lines += [f"    {frac:6.1%}  {name}" for name, frac in summary[key][:top]]
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] != "summarize":
        sys.exit(__doc__)
    print(render({**summarize(Path(sys.argv[2])), "raw": sys.argv[2]}))
