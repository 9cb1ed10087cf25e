"""`pingan users` and `pingan tokens` as an operator runs them on the server: accounts only for people of the
directory, a token printed once and never listed, every change in the hash chain with the OS user as the actor."""

import getpass
import subprocess
from pathlib import Path

from tests.fixtures.stack import pingan_argv, pingan_env


def run(env: dict[str, str], *args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(pingan_argv(*args), env=env, input=stdin, capture_output=True, text=True, timeout=120)


def test_users_and_tokens_from_the_command_line(tmp_path: Path) -> None:
    env = pingan_env(tmp_path / "data")
    added = run(env, "users", "add", "zhou-haibo", "--role", "admin", "--password-stdin", stdin="first-admin-pass\n")
    assert added.returncode == 0, added.stderr
    assert "zhou-haibo: admin" in added.stdout
    again = run(env, "users", "add", "zhou-haibo", "--role", "admin", "--password-stdin", stdin="first-admin-pass\n")
    assert again.returncode == 1 and "already has an account" in again.stderr
    stranger = run(env, "users", "add", "nobody-here", "--role", "viewer", "--password-stdin", stdin="long-enough-1\n")
    assert stranger.returncode == 1 and "not in the directory" in stranger.stderr
    short = run(env, "users", "add", "su-peng", "--role", "department_liaison", "--password-stdin", stdin="short\n")
    assert short.returncode == 1 and "password: at least" in short.stderr
    liaison = run(env, "users", "add", "su-peng", "--role", "department_liaison", "--password-stdin",
                  stdin="liaison-password\n")
    assert liaison.returncode == 0 and "departments: fire" in liaison.stdout

    too_much = run(env, "tokens", "create", "--person", "su-peng", "--role", "admin")
    assert too_much.returncode == 1 and "does not hold admin" in too_much.stderr
    created = run(env, "tokens", "create", "--person", "su-peng", "--role", "department_liaison", "--label", "script")
    assert created.returncode == 0, created.stderr
    secret = created.stdout.strip()
    assert secret.startswith("pa_") and "shown once" in created.stderr
    listed = run(env, "tokens", "list").stdout
    token_id = secret.split("_")[1]
    assert token_id in listed and secret not in listed and "live" in listed
    assert "revoked" in run(env, "tokens", "revoke", token_id).stdout
    assert "revoked" in run(env, "tokens", "list").stdout

    assert run(env, "users", "passwd", "su-peng", "--password-stdin", stdin="another-password\n").returncode == 0
    assert run(env, "users", "disable", "su-peng").returncode == 0
    users = run(env, "users", "list").stdout
    assert "zhou-haibo" in users and "active" in users and "disabled" in users

    actor = f"cli:{getpass.getuser()}"
    log = run(env, "timeline", "user:su-peng").stdout
    kinds = [line.split()[2] for line in log.splitlines() if line.strip().startswith("#")]
    assert kinds == ["user_added", "token_created", "token_revoked", "password_changed", "user_disabled"]
    assert all(actor in line for line in log.splitlines() if line.strip().startswith("#"))
    verified = run(env, "log", "verify")
    assert verified.returncode == 0 and "hash chain intact" in verified.stdout
