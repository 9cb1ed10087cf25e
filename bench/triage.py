"""How well citizen texts are read: per-category precision and recall of the SMS classifier
(schemas/adapters/sms_classifier.py) on the hand-labelled texts in tests/data/citizen_texts.yaml, the unclassified
rate, subtype and hazard accuracy, and place recognition.

Run by hand: `python bench/triage.py` (all parts), `--misses dev` to list what the tuning part gets wrong. The
hold-out part (every fourth text of citizen_texts.yaml) was not looked at while the lexicon was tuned; the fresh
part (citizen_texts_fresh.yaml) was written after the lexicon was, and is the blind figure.
No broker, no timing: the figures depend only on the code and the data, not on the machine.
"""

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fixtures.triage_eval import CLASSES, Scores, evaluate, load  # noqa: E402


def _pct(num: int, den: int) -> str:
    return f"{num / den:.3f} ({num}/{den})" if den else "n/a"


def table(name: str, s: Scores) -> str:
    lines = [f"{name}: {s.n} texts", "",
             "| category | texts | precision | recall |", "|---|---:|---:|---:|"]
    for cls in CLASSES:
        lines.append(f"| {cls} | {s.support(cls)} | {s.precision(cls):.3f} | {s.recall(cls):.3f} |")
    lines += ["",
              f"- unclassified rate: {_pct(s.unclassified, s.n)}",
              f"- subtype accuracy (reports): {_pct(s.subtype_ok, s.reports)}",
              f"- hazard accuracy (texts naming one): {_pct(s.hazard_ok, s.hazards)}",
              f"- place recognised (texts naming a district place): {_pct(s.area_ok, s.areas)}",
              f"- place wrongly found (texts naming none): {_pct(s.false_areas, s.no_areas)}",
              f"- death count read (texts giving one): {_pct(s.deaths_ok, s.deaths)}", ""]
    return "\n".join(lines)


def figures(s: Scores) -> dict[str, object]:
    return {"n": s.n, "precision": {c: s.precision(c) for c in CLASSES}, "recall": {c: s.recall(c) for c in CLASSES},
            "unclassified_rate": s.unclassified / s.n, "subtype_accuracy": s.subtype_ok / max(s.reports, 1),
            "place_accuracy": s.area_ok / max(s.areas, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--misses", choices=["dev", "holdout", "fresh", "all"], help="list the texts read wrongly")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    items = load()
    started = time.perf_counter()
    parts = {"all": items, **{p: [i for i in items if i.part == p] for p in ("dev", "holdout", "fresh")}}
    scores = {name: evaluate(part) for name, part in parts.items()}
    elapsed = time.perf_counter() - started
    for name, label in (("all", "All texts"), ("dev", "Tuning part (dev, citizen_texts.yaml)"),
                        ("holdout", "Hold-out part (every 4th of citizen_texts.yaml)"),
                        ("fresh", "Fresh part (citizen_texts_fresh.yaml, written after the lexicon)")):
        print(table(label, scores[name]))
    print(f"({elapsed:.1f} s for {sum(s.n for s in scores.values())} classifications, tokenizer load included)")
    if args.misses:
        print(f"\nMisses ({args.misses}):")
        for item, c in scores[args.misses].misses:
            got = "unclassified" if c.unclassified else f"{c.category.value}/{c.subtype.value}"
            print(f"  {item.part}#{item.index} {item.text!r}: "
                  f"expected {item.expect} {item.hazard or ''} {item.area or ''}; "
                  f"got {got} {c.hazard or ''} {c.area.code if c.area else ''} terms={c.terms} hint={c.hint} "
                  f"negated={c.negated}")
    if args.json:
        args.json.write_text(json.dumps({k: figures(v) for k, v in scores.items()}, indent=2))


if __name__ == "__main__":
    main()
