"""Clean text out: control characters escaped wherever stored text reaches a terminal or a log line.

Titles, names and reasons come from citizens, CAP senders and plan files. Printed raw, a newline forges a line of
`pingan timeline` or of the worker's log, an ANSI escape repaints the duty officer's terminal, and a bidi override
shows a line's words in another order than they are stored. `printable` escapes exactly those characters and keeps
everything else (Chinese, emoji) as it is; `escape_log_records` makes every log record's message printable, in
whichever handler and formatter prints it (faust and uvicorn install their own), so each record stays one line.
"""

import logging
import re

# C0 controls and DEL, C1 controls, the line and paragraph separators, and the bidi embeddings, overrides and
# isolates (U+202A-202E, U+2066-2069) plus the invisible direction marks (LRM, RLM, ALM) that reorder text too.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(text: str) -> str:
    """`text` with every control, separator and bidi character shown as `\\xNN` / `\\uNNNN`: one visible line."""
    return _CONTROL.sub(_escape, text)


class PrintableLogRecord(logging.LogRecord):
    """A log record whose message (the format with its %s arguments filled in) is always printable."""

    def getMessage(self) -> str:  # noqa: N802 (logging's name)
        return printable(super().getMessage())


def escape_log_records() -> None:
    """Make every log record of this process a PrintableLogRecord (idempotent). The process bootstrap calls it
    before any handler exists; a record factory rather than a Formatter, because faust and uvicorn replace
    handlers and formatters with their own. Tracebacks (exc_text) stay multi-line, as Python writes them."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "printable", False):
        return

    def factory(*args: object, **kwargs: object) -> logging.LogRecord:
        record = previous(*args, **kwargs)  # type: ignore[arg-type]
        if type(record) is logging.LogRecord:  # a class of another factory keeps its own behaviour
            record.__class__ = PrintableLogRecord
        return record

    factory.printable = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
