"""Issue 14, finding 1 without I/O: the CAP checks are linear, the count limits refuse before them, the CPU budget
stops a parse, and the rate limiter's per-address buckets stay bounded."""

import time

import pytest
from lxml import etree

from pingan.schemas.adapters.alertmanager import parse_alertmanager
from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_rules import FieldPaths, check_alert, field_path
from pingan.schemas.adapters.cap_xml import CAP12_NS, safe_parse
from pingan.schemas.adapters.limits import IntakeLimits, IntakeTooLarge, checkpoint, cpu_budget
from pingan.web.guards import RateLimiter

HEAD = (f'<alert xmlns="{CAP12_NS}"><identifier>u-1</identifier><sender>unit@example.org</sender>'
        "<sent>2026-08-01T08:00:00+08:00</sent><status>Actual</status><msgType>Alert</msgType><scope>Public</scope>")


def empty_infos(n: int) -> bytes:
    return (HEAD + "<info/>" * n + "</alert>").encode()


def naive_path(el: etree._Element) -> str:
    """The old definition (preceding siblings counted on every call), as the reference for the numbering."""
    parts = []
    node: etree._Element | None = el
    while node is not None:
        name = etree.QName(node).localname
        if name in ("info", "area", "polygon", "circle", "category"):
            name += f"[{sum(1 for s in node.itersiblings(preceding=True) if s.tag == node.tag)}]"
        parts.append(name)
        node = node.getparent()
    return ".".join(reversed(parts))


def test_field_paths_number_each_kind_of_sibling_as_before() -> None:
    body = (HEAD + "<info><category>Met</category><!-- c --><category>Geo</category><area><areaDesc>a</areaDesc>"
            "<polygon>1,1 1,2 2,2 1,1</polygon><circle>1,1 2</circle><polygon>3,3 3,4 4,4 3,3</polygon></area>"
            "<area><areaDesc>b</areaDesc></area></info><info><area><areaDesc>c</areaDesc></area></info></alert>")
    root = safe_parse(body.encode())
    paths = FieldPaths()
    elements = [el for el in root.iter() if isinstance(el.tag, str)]
    assert [paths(el) for el in elements] == [naive_path(el) for el in elements]
    second_polygon = root.findall(f".//{{{CAP12_NS}}}polygon")[1]
    assert field_path(second_polygon) == "alert.info[0].area[0].polygon[1]"


def test_checking_many_infos_is_linear() -> None:
    # Quadratic before: 4,000 empty infos took 10 s and 50,000 over 8 minutes. Now 8,000 is a few tens of ms.
    root = safe_parse(empty_infos(8000))
    started = time.thread_time()
    problems = check_alert(root, CAP12_NS, "body")
    assert time.thread_time() - started < 2.0
    assert problems[0].field == "alert.info[0].category" and len(problems) == 50


def test_count_limits_refuse_before_the_rule_checks() -> None:
    limits = IntakeLimits(cap_max_infos=10)
    started = time.thread_time()
    with pytest.raises(IntakeTooLarge) as refused:
        parse_cap(empty_infos(50_000), limits=limits)
    assert time.thread_time() - started < 1.0
    error = refused.value
    assert (error.field, error.limit, error.count, error.setting) == ("alert.info", 10, 50_000, "PINGAN_CAP_MAX_INFOS")
    assert error.as_dict()["setting"] == "PINGAN_CAP_MAX_INFOS"


def test_alertmanager_alert_limit_counts_before_validation() -> None:
    body = b'{"status": "firing", "alerts": [' + b",".join(b'{"labels": {"a": "1"}}' for _ in range(11)) + b"]}"
    with pytest.raises(IntakeTooLarge) as refused:
        parse_alertmanager(body, limits=IntakeLimits(alertmanager_max_alerts=10))
    assert refused.value.setting == "PINGAN_ALERTMANAGER_MAX_ALERTS" and refused.value.count == 11
    assert len(parse_alertmanager(body, limits=IntakeLimits(alertmanager_max_alerts=11))) == 11


def test_cpu_budget_stops_a_parse_at_its_next_checkpoint() -> None:
    checkpoint()  # outside a budget: nothing to enforce
    with cpu_budget(0.001), pytest.raises(IntakeTooLarge) as spent:
        deadline = time.thread_time() + 0.05
        while time.thread_time() < deadline:
            checkpoint()
    assert spent.value.setting == "PINGAN_INTAKE_PARSE_CPU_BUDGET_S"
    checkpoint()  # the budget ended with its block
    with cpu_budget(0.001), pytest.raises(IntakeTooLarge):
        parse_cap(empty_infos(3000), limits=IntakeLimits(cap_max_infos=100_000))


def test_rate_limiter_keeps_per_key_buckets_and_stays_bounded() -> None:
    limiter = RateLimiter(per_minute=2, max_keys=100)
    assert [limiter.take("a", now=0.0), limiter.take("a", now=0.0)] == [None, None]
    assert limiter.take("a", now=0.0) == 30  # one request every 30 s
    assert limiter.take("b", now=0.0) is None  # another key has its own bucket
    assert limiter.take("a", now=30.0) is None
    for i in range(1000):
        limiter.take(f"10.0.{i // 256}.{i % 256}", now=100.0 + i)
    assert len(limiter._buckets) <= 101
