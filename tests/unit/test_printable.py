"""Clean text out (issue 14, finding 7): control characters are escaped wherever text reaches a terminal or a log line,
so a newline in a citizen's title cannot forge a line, and an ANSI or bidi escape cannot repaint or reorder one."""

import logging

from pingan.schemas.printable import escape_log_records, printable


def test_controls_are_escaped_and_chinese_is_kept() -> None:
    assert printable("仓库起火（唐家社区）") == "仓库起火（唐家社区）"
    assert printable("a\nb\rc") == "a\\x0ab\\x0dc"
    assert printable("\x1b[31mred") == "\\x1b[31mred"
    assert printable("abc\u202edcba") == "abc\\u202edcba"
    assert printable("nul\x00") == "nul\\x00"
    assert printable("tab\there\x7f\x85\x9b") == "tab\\x09here\\x7f\\x85\\x9b"
    assert printable("line\u2028sep\u2029para") == "line\\u2028sep\\u2029para"
    assert printable("\u202a\u202b\u202c\u202d\u2066\u2067\u2068\u2069") == (
        "\\u202a\\u202b\\u202c\\u202d\\u2066\\u2067\\u2068\\u2069")
    assert printable("emoji 🚒 and ✓ stay") == "emoji 🚒 and ✓ stay"


def test_every_log_line_stays_one_line() -> None:
    default = logging.getLogRecordFactory()
    try:
        escape_log_records()
        escape_log_records()  # installing twice changes nothing
        record = logging.getLogger("pingan.test").makeRecord(
            "pingan.test", logging.INFO, __file__, 1, "incident %s: %s",
            ("INC-1", "起火\n2026-01-01 forged \x1b[31m"), None)
    finally:
        logging.setLogRecordFactory(default)  # the rest of the test session keeps Python's records
    assert record.getMessage() == "incident INC-1: 起火\\x0a2026-01-01 forged \\x1b[31m"
    line = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s").format(record)
    assert "\n" not in line and "\x1b" not in line
