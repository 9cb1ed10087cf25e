"""`pingan cap verify FILE --ca CA.pem`: what a receiver of Pingan's signed CAP checks (issue 17), offline: the
enveloped XML Signature, its digest, and the signing certificate's chain to the CA given (schemas/adapters/cap_sign.py
verify_cap). An office runs it on a document its own /public/cap/{identifier}.xml served, with its CA's root, before
it tells receivers to rely on the signature; a receiver runs it on one it got. Exit 0 and the signer, or exit 1 and
the reason.
"""

from pathlib import Path
from typing import Annotated

import typer

from pingan.cli import runtime

cap_app = typer.Typer(help="CAP documents: check a signed one as a receiver would.", no_args_is_help=True)


@cap_app.command("verify")
def verify(
    file: Annotated[Path, typer.Argument(help="A CAP document, e.g. saved from /public/cap/{identifier}.xml")],
    ca: Annotated[Path, typer.Option("--ca", help="PEM file of the CA certificate(s) you trust (the root)")],
) -> None:
    """Check a CAP document's signature and its certificate's chain to --ca; exit 1 naming what failed."""
    from pingan.schemas.adapters.cap_sign import InvalidCapSignature, verify_cap

    try:
        document = file.read_bytes()
    except OSError as exc:
        runtime.fail(f"{file}: cannot be read: {exc.strerror or exc}")
    try:
        verified = verify_cap(document, ca)
    except OSError as exc:
        runtime.fail(f"--ca {ca}: cannot be read: {exc.strerror or exc}")
    except InvalidCapSignature as exc:
        runtime.fail(f"{file}: {exc}")
    runtime.echo(f"{file}: signature valid; signed by {verified.signer} (certificate valid until "
                 f"{verified.not_after:%Y-%m-%d}), chained to a CA in {ca}")
