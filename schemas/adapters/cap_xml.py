"""Hardened XML parsing for intake (CAP messages and CAP feeds), and the CAP XML schemas.

Untrusted XML is parsed with entity resolution, DTD loading and network access off, and any document that
carries a DOCTYPE is rejected: CAP needs none, and a DOCTYPE is how XXE attacks (external entities reading
local files or fetching URLs) and entity-expansion bombs get in.

cap-v1.2.xsd beside this module is the OASIS CAP 1.2 schema (Copyright OASIS Open 2010), a byte-identical copy
of http://docs.oasis-open.org/emergency/cap/v1.2/CAP-v1.2.xsd (md5 9c51a87f1e1314640f0583e3222089ce).
"""

import re
import threading
from functools import cache
from importlib import resources

from lxml import etree

from pingan.schemas.adapters.errors import IntakeError

CAP11_NS = "urn:oasis:names:tc:emergency:cap:1.1"
CAP12_NS = "urn:oasis:names:tc:emergency:cap:1.2"
CAP_NAMESPACES = {CAP11_NS: "1.1", CAP12_NS: "1.2"}

MAX_DOCUMENT_BYTES = 5 * 1024 * 1024  # an IPAWS message with an embedded audio file is ~100 KB

# The first start tag of an element; everything before it is the prolog, where a DOCTYPE has to be.
_FIRST_ELEMENT = re.compile(rb"<[A-Za-z_:\x80-\xff]")


class _ExternalResourceRefused(Exception):
    pass


class _RefuseEverything(etree.Resolver):
    """Defence in depth: should libxml2 ever ask to load a DTD or an entity, the answer is no."""

    def resolve(self, system_url: str, public_id: str, context: object) -> None:
        raise _ExternalResourceRefused(system_url or public_id or "?")


def hardened_parser() -> etree.XMLParser:
    # A parser per document: lxml parsers must not be shared between threads (the feed poller has its own).
    parser = etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        huge_tree=False,
        remove_blank_text=False,
    )
    parser.resolvers.add(_RefuseEverything())
    return parser


def _doctype_error(source_name: str, line: int | None = None, col: int | None = None) -> IntakeError:
    return IntakeError(
        "DOCTYPE declarations are not accepted: CAP needs none, and they can define entities that read local "
        "files or fetch URLs (XXE)",
        field="DOCTYPE",
        line=line,
        col=col,
        source=source_name,
    )


def safe_parse(data: bytes, source_name: str = "body", max_bytes: int = MAX_DOCUMENT_BYTES) -> etree._Element:
    """Parse untrusted XML bytes; the root element, or IntakeError. Bytes, so the XML declaration's encoding wins."""
    if isinstance(data, str):
        # A decoded str has lost its encoding declaration (the ISO-8859-1 messages would be mangled).
        raise TypeError("safe_parse takes the document's bytes, not a decoded str")
    data = bytes(data)
    if not data.strip():
        raise IntakeError("empty document", source=source_name)
    if len(data) > max_bytes:
        raise IntakeError(f"document is {len(data)} bytes; the limit is {max_bytes}", source=source_name)
    # Fast path for ASCII-compatible encodings: a DOCTYPE in the prolog never even reaches libxml2.
    # (UTF-16/32 documents slip past this scan; the hardened parser and the docinfo check below catch them.)
    first = _FIRST_ELEMENT.search(data)
    prolog = data[: first.start()] if first else data
    at = prolog.find(b"<!DOCTYPE")
    if at >= 0:
        line = prolog.count(b"\n", 0, at) + 1
        col = at - (prolog.rfind(b"\n", 0, at) + 1) + 1
        raise _doctype_error(source_name, line, col)
    try:
        root = etree.fromstring(data, hardened_parser())
    except _ExternalResourceRefused as exc:
        raise IntakeError(f"the document asks to load an external resource ({exc}); refused",
                          field="DOCTYPE", source=source_name) from None
    except etree.XMLSyntaxError as exc:
        line, col = (exc.position if exc.position else (None, None))
        raise IntakeError(f"not well-formed XML: {exc.msg}", line=line or None, col=col or None,
                          source=source_name) from None
    docinfo = root.getroottree().docinfo
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise _doctype_error(source_name)  # libxml2 does not say where; the byte scan above usually does
    return root


@cache
def _xsd_bytes() -> bytes:
    return resources.files("pingan.schemas.adapters").joinpath("cap-v1.2.xsd").read_bytes()


# libxml2 compiles schemas with process-wide state (its built-in types are set up on first use): two threads
# compiling at once in a fresh process failed 4 times in 12 ("Document is not valid XML Schema", "the given type is
# not a built-in type": the intake bench's first concurrent CAP posts got 500s). One compile at a time.
_COMPILING = threading.Lock()


def _schema(namespace: str) -> tuple[etree.XMLSchema, threading.Lock]:
    with _COMPILING:
        return _compiled_schema(namespace)


@cache
def _compiled_schema(namespace: str) -> tuple[etree.XMLSchema, threading.Lock]:
    """The schema for a CAP namespace, loaded once.

    CAP 1.1 has no schema file here: it is the 1.2 schema with its target namespace rewritten to 1.1 and
    <resource><mimeType> made optional again (1.2 made it required). That is the one 1.2 tightening a 1.1
    message can trip over; 1.2 only added values (responseType Avoid/AllClear), so the derived schema is at
    most slightly more permissive than the real 1.1 one.
    """
    xsd = _xsd_bytes()
    if namespace == CAP11_NS:
        mime = b'<element name = "mimeType" type = "xs:string"/>'
        if xsd.count(mime) != 1 or xsd.count(CAP12_NS.encode()) != 2:
            raise RuntimeError("cap-v1.2.xsd is not the expected OASIS file; cannot derive the CAP 1.1 schema")
        xsd = xsd.replace(mime, b'<element name = "mimeType" type = "xs:string" minOccurs = "0"/>')
        xsd = xsd.replace(CAP12_NS.encode(), CAP11_NS.encode())
    # The schema's own parse is hardened too: it is a file we ship, but nothing in it needs resolving.
    schema = etree.XMLSchema(etree.fromstring(xsd, hardened_parser()))
    return schema, threading.Lock()


def xsd_errors(root: etree._Element, namespace: str) -> list[tuple[int | None, int | None, str, str]]:
    """(line, col, xpath, message) for every schema violation; [] if valid."""
    schema, lock = _schema(namespace)
    # An XMLSchema keeps its error_log on the object: one validation at a time.
    with lock:
        if schema.validate(root):
            return []
        return [(e.line or None, e.column or None, e.path or "", e.message) for e in schema.error_log]
