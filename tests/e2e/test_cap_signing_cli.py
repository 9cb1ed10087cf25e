"""`pingan api` with a CAP signing key or certificate it cannot use (issue 17, signed CAP) refuses to start, with
one line naming the setting and the file; it never starts and fails later with a 500."""

import os
import subprocess
import sys
from pathlib import Path

from tests.fixtures.cap_signing import key_pem, make_pki, rsa_key


def api(tmp_path: Path, **settings: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONIOENCODING": "utf-8", "PINGAN_DATA_DIR": str(tmp_path / "var"),
           "PINGAN_HTTP_HOST": "127.0.0.1", "PINGAN_HTTP_PORT": "1"}  # never reached: the settings stop it first
    env.update({f"PINGAN_{name.upper()}": str(path) for name, path in settings.items()})
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "api"], capture_output=True, text=True, env=env,
                          timeout=120, check=False)


def test_a_key_that_does_not_match_the_certificate_stops_start_up(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    other = tmp_path / "other-key.pem"
    other.write_bytes(key_pem(rsa_key()))
    done = api(tmp_path, cap_signing_key=other, cap_signing_cert=pki.cert_file)
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"bad settings: cap_signing_cert: PINGAN_CAP_SIGNING_CERT ({pki.cert_file}): its first certificate" \
        in done.stderr
    assert f"PINGAN_CAP_SIGNING_KEY ({other})" in done.stderr and "Traceback" not in done.stderr


def test_an_unreadable_key_stops_start_up(tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki")
    missing = tmp_path / "missing-key.pem"
    done = api(tmp_path, cap_signing_key=missing, cap_signing_cert=pki.cert_file)
    assert done.returncode == 1
    assert f"bad settings: cap_signing_key: PINGAN_CAP_SIGNING_KEY ({missing}): cannot be read" in done.stderr


def cap_verify(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pingan.cli.main", "cap", "verify", *args], capture_output=True,
                          text=True, env={**os.environ, "PYTHONIOENCODING": "utf-8"}, timeout=120, check=False)


def test_pingan_cap_verify_checks_a_signed_document_as_a_receiver_would(tmp_path: Path) -> None:
    from tests.unit.test_cap_sign import typhoon_cap

    pki = make_pki(tmp_path / "pki")
    signed = tmp_path / "alert.xml"
    signed.write_bytes(pki.signer().sign(typhoon_cap()))
    done = cap_verify(str(signed), "--ca", str(pki.ca_file))
    assert done.returncode == 0, done.stderr
    assert "signature valid; signed by CN=Tangjiawan Emergency Office CAP signing" in done.stdout

    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(signed.read_bytes().replace(b"<severity>Severe<", b"<severity>Minor<", 1))
    done = cap_verify(str(tampered), "--ca", str(pki.ca_file))
    assert done.returncode == 1 and f"error: {tampered}: the signature does not verify" in done.stderr

    stranger = make_pki(tmp_path / "stranger")
    done = cap_verify(str(signed), "--ca", str(stranger.ca_file))
    assert done.returncode == 1 and "the signature does not verify" in done.stderr  # not its CA

    unsigned = tmp_path / "unsigned.xml"
    unsigned.write_bytes(typhoon_cap())
    done = cap_verify(str(unsigned), "--ca", str(pki.ca_file))
    assert done.returncode == 1 and "has not been signed" in done.stderr
    done = cap_verify(str(signed), "--ca", str(tmp_path / "nope.pem"))
    assert done.returncode == 1 and "--ca" in done.stderr and "cannot be read" in done.stderr
