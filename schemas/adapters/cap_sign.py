"""Signed CAP 1.2 (issue 17): an enveloped XML Signature over a published alert, as CAP 1.2 §3.3.2.1 describes.

    CapSigner.from_pem(key_pem, cert_pem)   the office's key and its certificate (chain); CapSigningError naming
                                            what is wrong (unreadable, encrypted, not matching, expired)
    load_cap_signer(key_path, cert_path)    the same from the files PINGAN_CAP_SIGNING_KEY / _CERT name; the
                                            settings call it when they are read, so a bad pair stops start-up
    signer.sign(document) -> bytes          the alert with <Signature xmlns="http://www.w3.org/2000/09/xmldsig#">
                                            as its last child
    verify_cap(document, ca_file)           what a receiver checks: the signature and digest, and that the embedded
                                            signing certificate chains to the CA it trusts -> VerifiedCap (the
                                            signed alert, the signer); InvalidCapSignature saying what failed

Pure but for the files load_cap_signer and verify_cap read. release_to_cap (cap_out.py) stays unsigned; this wraps
it.

Choices, where the standard leaves them:
- Enveloped signature, exclusive canonicalization (xml-exc-c14n, as IPAWS and most CAP signers use), SHA-256
  digest, RSA-SHA256 or ECDSA-SHA256 by the key's type; one Reference with URI="" (the whole alert); the signing
  certificate and the rest of its chain in <KeyInfo><X509Data>, leaf first.
- The alert is signed without indentation: receivers (capvalidator among them) re-parse with blank text removed
  before they verify, and whitespace between elements is part of what an enveloped signature covers.
- The Signature element uses the XML-DSig namespace as its default namespace (as the CAP 1.2 example does), no
  `ds:` prefix.
"""

from base64 import b64decode
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner, XMLVerifier
from signxml.exceptions import InvalidInput, SignXMLException

__all__ = ["XMLDSIG_NS", "CapSigner", "CapSigningError", "InvalidCapSignature", "VerifiedCap", "load_cap_signer",
           "verify_cap"]

XMLDSIG_NS = "http://www.w3.org/2000/09/xmldsig#"
KEY_SETTING = "PINGAN_CAP_SIGNING_KEY"
CERT_SETTING = "PINGAN_CAP_SIGNING_CERT"
_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0


class CapSigningError(ValueError):
    """The signing key or certificate cannot be used; the message names the setting and the file, `setting` is
    KEY_SETTING or CERT_SETTING."""

    def __init__(self, message: str, setting: str) -> None:
        super().__init__(message)
        self.setting = setting


class InvalidCapSignature(ValueError):
    """A CAP document whose signature does not verify, or whose certificate the receiver does not trust."""


def _where(setting: str, path: Path | None) -> str:
    return f"{setting} ({path})" if path is not None else setting


@dataclass(frozen=True)
class CapSigner:
    # The loaded key, not its PEM: loading an RSA key checks it, about 50 ms, which signxml would do on every sign.
    key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
    chain_pem: list[bytes]  # the signing certificate first, then its intermediates
    method: SignatureMethod
    subject: str
    not_after: datetime

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, *, key_path: Path | None = None,
                 cert_path: Path | None = None, now: datetime | None = None) -> "CapSigner":
        key_at, cert_at = _where(KEY_SETTING, key_path), _where(CERT_SETTING, cert_path)
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
        except TypeError:
            raise CapSigningError(f"{key_at}: the private key is encrypted; give it unencrypted, readable only by "
                                  "Pingan's user (chmod 600)", KEY_SETTING) from None
        except (ValueError, UnsupportedAlgorithm) as exc:
            raise CapSigningError(f"{key_at}: not a PEM private key ({exc})", KEY_SETTING) from None
        if isinstance(key, rsa.RSAPrivateKey):
            if key.key_size < 2048:
                raise CapSigningError(f"{key_at}: an RSA key of {key.key_size} bits; at least 2048 are required",
                                      KEY_SETTING)
            method = SignatureMethod.RSA_SHA256
        elif isinstance(key, ec.EllipticCurvePrivateKey):
            method = SignatureMethod.ECDSA_SHA256
        else:
            raise CapSigningError(f"{key_at}: a {type(key).__name__}; an RSA or EC key is required",
                                  KEY_SETTING)
        try:
            chain = x509.load_pem_x509_certificates(cert_pem)
        except ValueError as exc:
            raise CapSigningError(f"{cert_at}: not a PEM certificate ({exc})", CERT_SETTING) from None
        leaf = chain[0]
        public = serialization.PublicFormat.SubjectPublicKeyInfo
        der = serialization.Encoding.DER
        if leaf.public_key().public_bytes(der, public) != key.public_key().public_bytes(der, public):
            raise CapSigningError(f"{cert_at}: its first certificate ({leaf.subject.rfc4514_string()}) is not the "
                                  f"certificate of the key in {key_at}; put the signing certificate first",
                                  CERT_SETTING)
        now = now or datetime.now(UTC)
        if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
            raise CapSigningError(f"{cert_at}: the certificate is valid from {leaf.not_valid_before_utc:%Y-%m-%d} "
                                  f"to {leaf.not_valid_after_utc:%Y-%m-%d}, not now; receivers would refuse "
                                  "every alert signed with it", CERT_SETTING)
        pems = [c.public_bytes(serialization.Encoding.PEM) for c in chain]
        return cls(key, pems, method, leaf.subject.rfc4514_string(), leaf.not_valid_after_utc)

    def sign(self, document: bytes) -> bytes:
        """The CAP alert (bytes, as release_to_cap gives them) with an enveloped signature as its last child."""
        root = etree.fromstring(document, etree.XMLParser(remove_blank_text=True, resolve_entities=False,
                                                           no_network=True))
        signer = XMLSigner(signature_algorithm=self.method, digest_algorithm=DigestAlgorithm.SHA256,
                           c14n_algorithm=_C14N)
        signer.namespaces = {None: XMLDSIG_NS}
        signed = signer.sign(root, key=self.key, cert=[c.decode() for c in self.chain_pem])
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def load_cap_signer(key_path: Path, cert_path: Path) -> CapSigner:
    """The signer of the two PEM files; CapSigningError naming the setting and file that cannot be used."""
    contents = []
    for setting, path in ((KEY_SETTING, key_path), (CERT_SETTING, cert_path)):
        try:
            contents.append(path.read_bytes())
        except OSError as exc:
            raise CapSigningError(f"{setting} ({path}): cannot be read: {exc.strerror or exc}", setting) from None
    return CapSigner.from_pem(contents[0], contents[1], key_path=key_path, cert_path=cert_path)


@dataclass(frozen=True)
class VerifiedCap:
    signed: bytes  # the alert as signed, without its Signature: what a receiver should go on to read
    signer: str  # the signing certificate's subject (RFC 4514)
    not_after: datetime


def verify_cap(document: bytes, ca_file: Path) -> VerifiedCap:
    """What a receiver checks of a signed CAP alert: an enveloped Signature as the alert's last child, its digest
    and signature value over the whole alert, and the embedded certificate chain up to a CA in the PEM file
    `ca_file` (validity dates included). InvalidCapSignature saying what failed; OSError if `ca_file` cannot be read.
    Read the returned `signed` bytes, not the document given: only they are what was signed."""
    ca_pems = ca_file.read_bytes()
    try:
        x509.load_pem_x509_certificates(ca_pems)
    except ValueError as exc:
        raise InvalidCapSignature(f"{ca_file}: not a PEM file of CA certificates ({exc})") from None
    parser = etree.XMLParser(remove_blank_text=True, resolve_entities=False, no_network=True, load_dtd=False)
    try:
        tree = etree.ElementTree(etree.fromstring(document, parser))
    except etree.XMLSyntaxError as exc:
        raise InvalidCapSignature(f"not well-formed XML: {exc}") from None
    if tree.docinfo.doctype:
        raise InvalidCapSignature("the document has a DOCTYPE; a CAP alert has none (refused, as the intake does)")
    root = tree.getroot()
    if not len(root) or root[-1].tag != f"{{{XMLDSIG_NS}}}Signature":
        raise InvalidCapSignature("the alert has not been signed (its last child is not an XML-DSig Signature)")
    try:
        result = XMLVerifier().verify(root, ca_pem_file=str(ca_file))
    except (SignXMLException, InvalidInput) as exc:
        raise InvalidCapSignature(f"the signature does not verify: {exc}") from None
    leaf = x509.load_der_x509_certificate(b64decode("".join(
        root[-1].findtext(f".//{{{XMLDSIG_NS}}}X509Certificate", "").split())))
    signed = etree.tostring(result.signed_xml, xml_declaration=True, encoding="UTF-8")
    return VerifiedCap(signed, leaf.subject.rfc4514_string(), leaf.not_valid_after_utc)
