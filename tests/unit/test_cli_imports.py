"""The CLI starts fast because it imports only what a command uses (issue 15). Measured in bench/cli_start.py; here
the rule itself is checked, without timing: `pingan --help` and building the command tree load none of the heavy
modules, and `pingan timeline` loads the store but not the streams, the web app, faust or the SMS lexicon."""

import subprocess
import sys

HEAVY_FOR_HELP = ("sqlalchemy", "faust", "kafka", "fastapi", "jieba", "lxml", "pingan.store", "pingan.streams",
                  "pingan.web", "pingan.schemas.incident", "pingan.drill_runner", "pingan.handlers", "yaml",
                  "pydantic_settings")
NEVER_FOR_TIMELINE = ("faust", "kafka", "fastapi", "uvicorn", "jieba", "pingan.streams", "pingan.web",
                      "pingan.drill_runner")


def _loaded_after(code: str) -> set[str]:
    probe = f"import sys\n{code}\nprint('\\n'.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def _heavy(loaded: set[str], prefixes: tuple[str, ...]) -> list[str]:
    return sorted(m for m in loaded if any(m == p or m.startswith(p + ".") for p in prefixes))


def test_help_imports_no_heavy_module() -> None:
    code = ("from typer.main import get_command\nfrom pingan.cli.main import app\n"
            "import io, contextlib\nbuf = io.StringIO()\n"
            "with contextlib.redirect_stdout(buf), contextlib.suppress(SystemExit):\n"
            "    get_command(app).main(['--help'], prog_name='pingan')\n")
    assert _heavy(_loaded_after(code), HEAVY_FOR_HELP) == []


def test_every_subcommand_help_is_light() -> None:
    code = ("from typer.main import get_command\nfrom pingan.cli.main import app\n"
            "import io, contextlib\ncommand = get_command(app)\n"
            "for sub in ('plans', 'drill', 'intake', 'log', 'users', 'tokens', 'schema', 'release'):\n"
            "    with contextlib.redirect_stdout(io.StringIO()), contextlib.suppress(SystemExit):\n"
            "        command.main([sub, '--help'], prog_name='pingan')\n")
    assert _heavy(_loaded_after(code), HEAVY_FOR_HELP) == []


def test_timeline_imports_the_store_and_nothing_of_the_pipeline(tmp_path) -> None:  # type: ignore[no-untyped-def]
    code = (f"import os\nos.environ['PINGAN_DATA_DIR'] = {str(tmp_path)!r}\n"
            "from typer.main import get_command\nfrom pingan.cli.main import app\n"
            "import io, contextlib\n"
            "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()), "
            "contextlib.suppress(SystemExit):\n"
            "    get_command(app).main(['timeline', 'INC-NOPE'], prog_name='pingan')\n")
    loaded = _loaded_after(code)
    assert "pingan.store.repository" in loaded  # it did the work: opened the store and looked
    assert _heavy(loaded, NEVER_FOR_TIMELINE) == []
