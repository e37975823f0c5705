"""Bad input never crashes ksefctl: fuzzed and hostile manifests through the CLI, and
malformed answers from KSeF and Vault.  Always exit 1 with readable lines, no traceback.

The CLI retries at a test's pace (``quick_cli_retries``: the production number of
attempts, shorter waits), and the figures of what was tried go to the session's
figures (tests/support/figures.py), printed at the end of the run."""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.types import Message, Receive, Scope, Send

from ksefctl import cli
from ksefctl.sim.app import build_app
from tests.chaos.harness import ChaosWorld
from tests.support.figures import count
from tests.support.manifests import VALID as MANIFEST_VALID
from tests.support.process_world import CONTEXTS
from tests.support.servers import serve

pytestmark = pytest.mark.usefixtures("quick_cli_retries")

# The loader tests' valid manifest, pointed at a closed loopback port: `plan` must fail
# to connect after validation, never before it.
VALID = MANIFEST_VALID.replace("environment: test", 'environment: "http://127.0.0.1:9/v2"')
assert VALID != MANIFEST_VALID


def ksefctl(*args: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = cli.main(list(args))  # any exception escaping here fails the test
    return code, out.getvalue(), err.getvalue()


def check_rejected(kind: str, code: int, err: str, located_in: Path | None) -> None:
    """Exit 1, no traceback, and (for manifests) every error line names the file."""
    count("bad_input", "tried", kind)
    assert code == 1, (code, err)
    assert "Traceback" not in err and err.strip(), err
    lines = err.strip().splitlines()
    if located_in is not None:
        assert all(line.startswith(str(located_in)) for line in lines), err
    assert all(len(line) < 2000 for line in lines), err
    count("bad_input", "rejected_cleanly", kind)


@pytest.fixture(autouse=True)
def no_vault(monkeypatch: pytest.MonkeyPatch) -> None:
    # A manifest that happens to be valid makes plan reach for Vault: a closed port.
    monkeypatch.setenv("VAULT_ADDR", "http://127.0.0.1:9")
    monkeypatch.setenv("VAULT_TOKEN", "t")


def mutations() -> st.SearchStrategy[str]:
    lines = VALID.splitlines()
    junk = st.sampled_from(
        [
            "",
            "[",
            "]",
            "{",
            "- ",
            ": :",
            "&a x",
            "*a",
            "!!python/object:os.system",
            "~",
            "'",
            '"',
            "0x1F",
            "1e999",
            "-1",
            "null",
            "yes",
            "\t",
            "\x00",
            "\u202e",
            "🙂",
            "../..",
            "%s",
        ]
    ) | st.text(max_size=12)

    @st.composite
    def mutate(draw: st.DrawFn) -> str:
        out = list(lines)
        for _ in range(draw(st.integers(1, 3))):
            i = draw(st.integers(0, len(out) - 1))
            how = draw(st.sampled_from(["drop", "dup", "value", "indent", "insert"]))
            if how == "drop":
                del out[i]
            elif how == "dup":
                out.insert(i, out[i])
            elif how == "value" and ":" in out[i]:
                out[i] = out[i].split(":", 1)[0] + ": " + draw(junk)
            elif how == "indent":
                out[i] = " " * draw(st.integers(0, 7)) + out[i].lstrip()
            else:
                out.insert(i, draw(junk))
        return "\n".join(out) + "\n"

    return mutate()


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(text=st.text(max_size=300) | mutations())
def test_fuzzed_manifests_never_crash_validate_or_plan(tmp_path: Path, text: str) -> None:
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    for command in ("validate", "plan"):
        code, _, err = ksefctl(command, "-f", str(path))
        if code == 0:
            count("bad_input", "tried", "fuzzed manifest (valid)")
            count("bad_input", "rejected_cleanly", "fuzzed manifest (valid)")
            continue
        # A manifest error is located in the file; a valid one fails on the absent Vault.
        located = path if not err.startswith("Error: ") else None
        check_rejected("fuzzed manifest", code, err, located)


HOSTILE: dict[str, bytes] = {
    "huge file": b"# " + b"x" * (11 * 1024 * 1024) + b"\n",
    "deep nesting": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "alias bomb": b"a: &a [x, x, x, x, x, x, x, x, x]\n"
    + b"".join(
        f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n".encode()
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    ),
    "non-UTF-8": VALID.encode().replace(b"acme", b"\xff\xfeacme"),
    "NUL byte": VALID.encode().replace(b"acme", b"ac\x00me"),
    "path traversal in token name": VALID.encode().replace(b"name: reader", b"name: ../../x"),
    "path traversal in owner": VALID.encode().replace(b"name: acme", b"name: ../acme"),
    "path traversal in vault path": VALID.encode().replace(
        b"ksef/{environment}", b"../../{environment}"
    ),
    "absolute vault path": VALID.encode().replace(b'"ksef/{environment}', b'"/etc/{environment}'),
    "python tag": VALID.encode().replace(
        b"kind: TokenPolicy", b"kind: !!python/object/apply:os.system [id]"
    ),
    "duplicate key": VALID.encode().replace(
        b"kind: TokenPolicy\n", b"kind: TokenPolicy\nkind: TokenPolicy\n"
    ),
}


@pytest.mark.parametrize("kind", sorted(HOSTILE))
def test_hostile_manifests_are_refused_safely(tmp_path: Path, kind: str) -> None:
    path = tmp_path / "hostile.yaml"
    path.write_bytes(HOSTILE[kind])
    for command in ("validate", "plan"):
        code, _, err = ksefctl(command, "-f", str(path))
        check_rejected("hostile manifest", code, err, path)


# -- malformed answers -----------------------------------------------------------------

# What a certificate (XAdES) login and a plan call; the public keys serve token logins only.
ROUTES = {
    "challenge": re.compile(r"/v2/auth/challenge$"),
    "xades": re.compile(r"/v2/auth/xades-signature$"),
    "auth status": re.compile(r"/v2/auth/\d{8}-AU-"),
    "redeem": re.compile(r"/v2/auth/token/redeem$"),
    "token list": re.compile(r"/v2/tokens$"),
}


def corrupt(kind: str, body: bytes) -> tuple[int, bytes, bytes]:
    """(status, content type, body) of a broken answer made from the real one."""
    if kind == "html error page":
        return 502, b"text/html", b"<html><body><h1>502 Bad Gateway</h1></body></html>"
    if kind == "truncated":
        return 200, b"application/json", body[: len(body) // 2]
    try:
        data: Any = json.loads(body)
    except ValueError:
        data = {}
    if kind == "wrong types":
        swap = {str: 12345, int: "many", list: {"x": 1}, dict: [1, 2], bool: "yes"}
        if isinstance(data, dict):
            data = {k: swap.get(type(v)) for k, v in data.items()}
        else:
            data = {"unexpected": True}
    elif kind == "missing fields":
        data = {} if isinstance(data, dict) else []
    return 200, b"application/json", json.dumps(data).encode()


def corrupting(app: Any, route: re.Pattern[str], kind: str) -> Any:
    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not route.search(scope["path"]):
            await app(scope, receive, send)
            return
        held: list[Message] = []

        async def capture(message: Message) -> None:
            held.append(message)

        await app(scope, receive, capture)
        body = b"".join(m.get("body", b"") for m in held if m["type"] == "http.response.body")
        status, content_type, broken = corrupt(kind, body)
        headers = [(b"content-type", content_type), (b"content-length", str(len(broken)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": broken})

    return wrapped


CORRUPTIONS = ("html error page", "truncated", "wrong types", "missing fields")


@pytest.mark.parametrize("route", sorted(ROUTES))
def test_malformed_ksef_answers_give_a_clear_error(
    process_world: ChaosWorld, route: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VAULT_ADDR", process_world.vault_address)
    monkeypatch.setenv("VAULT_TOKEN", process_world.vault_token)
    app = build_app(process_world.sim.running.simulator)
    manifest = process_world.manifest("acme", CONTEXTS)
    for kind in CORRUPTIONS:
        with serve(corrupting(app, ROUTES[route], kind)) as port:
            manifest.write_text(
                manifest.read_text().replace(
                    process_world.sim.base_url, f"http://127.0.0.1:{port}/v2"
                )
            )
            code, _, err = ksefctl("plan", "-f", str(manifest))
            check_rejected("malformed KSeF answer", code, err, None)
            manifest.write_text(
                manifest.read_text().replace(
                    f"http://127.0.0.1:{port}/v2", process_world.sim.base_url
                )
            )


VAULT_ANSWERS = {
    "html error page": (503, b"text/html", b"<html>Service Unavailable</html>"),
    "html with 200": (200, b"text/html", b"<html>login portal</html>"),
    "wrong types": (200, b"application/json", b'{"data": "x", "auth": 7}'),
    "a list": (200, b"application/json", b"[1, 2]"),
    "truncated": (200, b"application/json", b'{"data": {"data": '),
}


@pytest.mark.parametrize("kind", sorted(VAULT_ANSWERS))
def test_malformed_vault_answers_give_a_clear_error(
    tmp_path: Path, kind: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    status, content_type, body = VAULT_ANSWERS[kind]

    async def stub(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", content_type)]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    manifest = tmp_path / "tokens.yaml"
    manifest.write_text(VALID)
    with serve(stub) as port:
        monkeypatch.setenv("VAULT_ADDR", f"http://127.0.0.1:{port}")
        code, _, err = ksefctl("plan", "-f", str(manifest))
    check_rejected("malformed Vault answer", code, err, None)
