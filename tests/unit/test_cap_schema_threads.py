"""The CAP schemas compile safely when the first CAP messages of a process arrive on several threads at once.

libxml2 sets up its schema types on first use, process-wide: two parse-pool threads compiling the 1.1 and 1.2
schemas at the same moment failed 4 times in 12 fresh processes ("Document is not valid XML Schema", "the given
type is not a built-in type"), and bench/intake.py's first concurrent CAP posts got 500s. The race needs a fresh
process each time, so each trial is one."""

import subprocess
import sys

TRIAL = """
import threading
from lxml import etree
from pingan.schemas.adapters import cap_xml
root = etree.fromstring(b'<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>')
errors, barrier = [], threading.Barrier(8)
def first_use(namespace):
    barrier.wait()
    try:
        cap_xml.xsd_errors(root, namespace)
    except Exception as exc:
        errors.append(repr(exc))
threads = [threading.Thread(target=first_use, args=((cap_xml.CAP12_NS, cap_xml.CAP11_NS)[i % 2],)) for i in range(8)]
[t.start() for t in threads]
[t.join() for t in threads]
print(errors[0] if errors else "ok")
"""


def test_eight_threads_compiling_the_cap_schemas_at_once_in_fresh_processes() -> None:
    outcomes = [subprocess.run([sys.executable, "-c", TRIAL], capture_output=True, text=True, timeout=60)
                for _ in range(8)]
    assert [(o.returncode, o.stdout.strip()) for o in outcomes] == [(0, "ok")] * 8, [o.stderr for o in outcomes]
