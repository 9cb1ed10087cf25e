"""Signed CAP 1.2 (schemas/adapters/cap_sign.py, issue 17): a signed alert passes capvalidator in strict mode, a
tampered or unsigned one fails it; the signature is an enveloped <Signature> in the XML-DSig default namespace,
the alert's last child; the signed alert still validates against the OASIS XSD and reads back through Pingan's own
intake as the same category and grade (which still refuses XXE); a receiver's chain check (verify_cap) trusts only
its CA. A key or certificate that cannot be used stops the settings, naming the setting and the file.

What capvalidator's strict mode checks (read in its source, capvalidator/validate.py): the XSD, then
signxml.XMLVerifier().verify(root, x509_cert=<the first X509Certificate in the document>) after re-parsing with
blank text removed. Given x509_cert, signxml checks the signature and digest against that certificate and its
validity dates, but no chain of trust: capvalidator has no CA parameter, environment variable or certifi use on
that path, so it cannot be made to trust a CA, and a self-signed certificate passes it too. Trust in the signer is
the receiver's chain check (verify_cap here, or signxml with ca_pem_file)."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import capvalidator
import pytest
from lxml import etree
from pydantic import ValidationError

from pingan.schemas.adapters.cap import parse_cap
from pingan.schemas.adapters.cap_out import release_to_cap
from pingan.schemas.adapters.cap_sign import XMLDSIG_NS, CapSigner, CapSigningError, InvalidCapSignature, verify_cap
from pingan.schemas.adapters.cap_xml import CAP12_NS
from pingan.schemas.adapters.cap_xml import xsd_errors as oasis_xsd_errors
from pingan.schemas.adapters.errors import IntakeError
from pingan.schemas.common import LocalizedText
from pingan.schemas.taxonomy import Category, Grade, IncidentStatus, Subtype
from pingan.settings import Settings
from tests.fixtures.cap_signing import Pki, certificate, key_pem, make_pki, pem, rsa_key
from tests.fixtures.releases import SENDER, make_release

NS = {"cap": CAP12_NS, "ds": XMLDSIG_NS}


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def typhoon_cap(**kw: object) -> bytes:
    return release_to_cap(make_release(**kw), sender=SENDER, earlier=[],  # type: ignore[arg-type]
                          sender_name=LocalizedText(zh="唐家湾应急办", en="Tangjiawan Emergency Office"),
                          web="https://pingan.example.gov.cn/public/")


def test_an_unsigned_alert_fails_capvalidator_strict_mode() -> None:
    result = capvalidator.validate_cap_message(typhoon_cap(), strict=True)
    assert not result.passed and "not been signed" in result.message


def test_a_signed_alert_passes_capvalidator_strict_mode(pki: Pki) -> None:
    signed = pki.signer().sign(typhoon_cap())
    result = capvalidator.validate_cap_message(signed, strict=True)
    assert result.passed and result.message == "CAP XML file is valid.", result.message
    root = etree.fromstring(signed)
    # CAP 1.2 §3.3.2.1: an enveloped signature, the alert's last child, in the XML-DSig (default) namespace.
    assert root[-1].tag == f"{{{XMLDSIG_NS}}}Signature" and root[-1].prefix is None
    assert len(root.findall("ds:Signature", NS)) == 1
    [reference] = root.findall("ds:Signature/ds:SignedInfo/ds:Reference", NS)
    assert reference.get("URI") == ""
    transforms = [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)]
    assert "http://www.w3.org/2000/09/xmldsig#enveloped-signature" in transforms
    # The leaf first, then the intermediate, so that a receiver can build the chain to its root.
    assert len(root.findall(".//ds:X509Certificate", NS)) == 2
    verified = verify_cap(signed, pki.ca_file)
    assert "CAP signing" in verified.signer and verified.not_after == pki.leaf.not_valid_after_utc
    assert b"Signature" not in verified.signed and "台风“海葵”".encode() in verified.signed


def test_a_headline_changed_after_signing_fails(pki: Pki) -> None:
    signed = pki.signer().sign(typhoon_cap())
    tampered = signed.replace("台风“海葵”将于今夜登陆".encode(), "台风已经远离".encode())
    assert tampered != signed
    result = capvalidator.validate_cap_message(tampered, strict=True)
    assert not result.passed and "tampered" in result.message
    with pytest.raises(InvalidCapSignature, match="does not verify"):
        verify_cap(tampered, pki.ca_file)
    # A changed grade term (severity) fails the same way: every element of the alert is covered.
    regraded = signed.replace(b"<severity>Severe</severity>", b"<severity>Minor</severity>", 1)
    assert regraded != signed
    assert not capvalidator.validate_cap_message(regraded, strict=True).passed


def test_the_signed_alert_is_valid_cap_and_reads_back_through_the_intake(pki: Pki) -> None:
    signed = pki.signer().sign(typhoon_cap())
    assert oasis_xsd_errors(etree.fromstring(signed), CAP12_NS) == []  # the <any namespace=xmldsig#> of the XSD
    assert capvalidator.check_schema(signed).passed
    [item] = parse_cap(signed)
    assert (item.report.category, item.report.subtype, item.report.grade) == \
        (Category.natural_disaster, Subtype.meteorological, Grade.II)
    exercise = pki.signer().sign(typhoon_cap(status=IncidentStatus.exercise))
    assert capvalidator.validate_cap_message(exercise, strict=True).passed
    assert parse_cap(exercise)[0].report.status is IncidentStatus.exercise


def test_the_intake_still_refuses_xxe_in_a_signed_alert(pki: Pki, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("PINGAN-SIGNED-XXE-MARKER")
    signed = pki.signer().sign(typhoon_cap())
    declaration, _, rest = signed.partition(b"?>")
    attack = declaration + b"?>\n" + f'<!DOCTYPE alert [<!ENTITY xxe SYSTEM "{secret.as_uri()}">]>'.encode() + \
        rest.replace(b"<note>", b"<note>&xxe;", 1).replace(b"<scope>Public</scope>", b"<scope>Public</scope>"
                                                               b"<note>&xxe;</note>", 1)
    with pytest.raises(IntakeError, match="DOCTYPE") as refused:
        parse_cap(attack)
    assert "PINGAN-SIGNED-XXE-MARKER" not in str(refused.value)
    with pytest.raises(InvalidCapSignature, match="DOCTYPE"):
        verify_cap(attack, pki.ca_file)


def test_an_ec_key_signs_too(tmp_path: Path) -> None:
    signed = make_pki(tmp_path, ec_leaf=True).signer().sign(typhoon_cap())
    assert capvalidator.validate_cap_message(signed, strict=True).passed
    assert b"ecdsa-sha256" in signed


def test_a_receiver_trusts_only_its_own_ca(pki: Pki, tmp_path: Path) -> None:
    # Signed by a self-made certificate: capvalidator's strict mode passes it (it checks no chain, see the module
    # docstring), a receiver that chains to its CA refuses it.
    stranger = make_pki(tmp_path / "stranger", name="stranger")
    forged = stranger.signer().sign(typhoon_cap())
    assert capvalidator.validate_cap_message(forged, strict=True).passed
    with pytest.raises(InvalidCapSignature, match="does not verify"):
        verify_cap(forged, pki.ca_file)
    assert verify_cap(forged, stranger.ca_file)
    with pytest.raises(InvalidCapSignature, match="not been signed"):
        verify_cap(typhoon_cap(), pki.ca_file)


def test_signing_is_deterministic_for_an_rsa_key(pki: Pki) -> None:
    # The served document's ETag stays the same from one request to the next.
    signer = pki.signer()
    assert signer.sign(typhoon_cap()) == signer.sign(typhoon_cap())


# -- settings: a key or certificate that cannot be used stops start-up, naming the setting and the file ----------


def settings_error(**files: Path) -> str:
    with pytest.raises(ValidationError) as refused:
        Settings(**files)  # type: ignore[arg-type]
    return str(refused.value)


def test_settings_load_the_signer_once(pki: Pki) -> None:
    settings = Settings(cap_signing_key=pki.key_file, cap_signing_cert=pki.cert_file)
    assert isinstance(settings.cap_signer, CapSigner) and "CAP signing" in settings.cap_signer.subject
    assert Settings().cap_signer is None


def test_one_of_the_two_settings_alone_is_refused(pki: Pki) -> None:
    assert "PINGAN_CAP_SIGNING_CERT is not set" in settings_error(cap_signing_key=pki.key_file)
    assert "PINGAN_CAP_SIGNING_KEY is not set" in settings_error(cap_signing_cert=pki.cert_file)


def test_unreadable_garbage_encrypted_or_mismatched_files_are_refused(pki: Pki, tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    message = settings_error(cap_signing_key=missing, cap_signing_cert=pki.cert_file)
    assert f"PINGAN_CAP_SIGNING_KEY ({missing}): cannot be read" in message
    message = settings_error(cap_signing_key=pki.key_file, cap_signing_cert=missing)
    assert f"PINGAN_CAP_SIGNING_CERT ({missing}): cannot be read" in message

    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a pem\n")
    assert f"PINGAN_CAP_SIGNING_KEY ({garbage}): not a PEM private key" in \
        settings_error(cap_signing_key=garbage, cap_signing_cert=pki.cert_file)
    assert f"PINGAN_CAP_SIGNING_CERT ({garbage}): not a PEM certificate" in \
        settings_error(cap_signing_key=pki.key_file, cap_signing_cert=garbage)

    from cryptography.hazmat.primitives import serialization
    encrypted = tmp_path / "encrypted.pem"
    encrypted.write_bytes(pki.leaf_key.private_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"passphrase")))
    assert "is encrypted" in settings_error(cap_signing_key=encrypted, cap_signing_cert=pki.cert_file)

    other_key = tmp_path / "other-key.pem"
    other_key.write_bytes(key_pem(rsa_key()))
    message = settings_error(cap_signing_key=other_key, cap_signing_cert=pki.cert_file)
    assert f"PINGAN_CAP_SIGNING_CERT ({pki.cert_file}): its first certificate" in message
    assert f"is not the certificate of the key in PINGAN_CAP_SIGNING_KEY ({other_key})" in message

    # The chain in the wrong order (the intermediate first) names the fix.
    chain = pki.cert_file.read_bytes()
    leaf_pem = pem(pki.leaf)
    reversed_chain = tmp_path / "reversed.pem"
    reversed_chain.write_bytes(chain.replace(leaf_pem, b"") + leaf_pem)
    assert "put the signing certificate first" in \
        settings_error(cap_signing_key=pki.key_file, cap_signing_cert=reversed_chain)


def test_an_expired_certificate_is_refused(pki: Pki, tmp_path: Path) -> None:
    key = rsa_key()
    old = certificate(key, "expired", pki.root_key, pki.root, ca=False,
                      not_before=datetime.now(UTC) - timedelta(days=60), days=30)
    key_file, cert_file = tmp_path / "k.pem", tmp_path / "c.pem"
    key_file.write_bytes(key_pem(key))
    cert_file.write_bytes(pem(old))
    message = settings_error(cap_signing_key=key_file, cap_signing_cert=cert_file)
    assert f"PINGAN_CAP_SIGNING_CERT ({cert_file}): the certificate is valid from" in message
    with pytest.raises(CapSigningError, match="not now"):
        CapSigner.from_pem(key_pem(key), pem(old))


def test_the_api_signs_each_document_once(tmp_path: Path) -> None:
    # An EC signature differs each time it is made: the cache keeps the served bytes, and so the ETag, stable.
    from pingan.web.public import SignedDocuments

    signer = make_pki(tmp_path, ec_leaf=True).signer()
    assert signer.sign(typhoon_cap()) != signer.sign(typhoon_cap())
    documents = SignedDocuments(signer, size=2)
    first = documents.get("A", typhoon_cap())
    assert documents.get("A", typhoon_cap()) == first
    other_body = typhoon_cap(n=2)
    assert documents.get("A", other_body) != first  # another body (another base URL) is signed on its own
    documents.get("B", typhoon_cap())
    assert documents.get("A", typhoon_cap()) != first  # the least recently served went first


def test_a_certificate_near_expiry_is_a_warning_when_the_api_starts(pki: Pki,
                                                                   caplog: pytest.LogCaptureFixture) -> None:
    from pingan.web.public import public_router

    settings = Settings(cap_signing_key=pki.key_file, cap_signing_cert=pki.cert_file)  # the leaf lasts 30 days
    with caplog.at_level("WARNING", logger="pingan.web.public"):
        public_router(settings, None)  # type: ignore[arg-type]
    assert "CAP signing certificate (PINGAN_CAP_SIGNING_CERT" in caplog.text and "in 29 days" in caplog.text
