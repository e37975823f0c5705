"""The README's commands, run verbatim.

The demo block is taken from README.md (the fenced block after the
``readme:demo`` marker), so README and test cannot drift, and run with bash
in a copy of the repository — as on a fresh clone — with its own ``.venv``.

Speed: by default the new virtual environment is given the test suite's
installed dependencies through a ``.pth`` file before the README's commands
run, so ``pip install -e '.[sandbox]'`` finds them satisfied and installs only
ksefctl itself (from the copy, which the test checks is what runs).  Set
``KSEFCTL_README_FRESH=1`` to skip that and install everything from PyPI, as a
newcomer would.  The sandbox lives in a temporary directory
(``KSEFCTL_SANDBOX_DIR``) on free ports, so a sandbox of your own is never
touched.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Iterator
from pathlib import Path

import hvac
import pytest

from ksefctl import playground
from ksefctl.openbao import free_port
from ksefctl.reconcile.render import NO_CHANGES
from tests.conftest import REPO

README = REPO / "README.md"
QUICKSTART_PORT = 18080
COPIED = ("pyproject.toml", "README.md", "ksefctl", "manifests", "schemas")


def readme_block(marker: str) -> str:
    """The first fenced code block after ``<!-- readme:MARKER ... -->``."""
    text = README.read_text(encoding="utf-8")
    found = re.search(
        rf"<!-- readme:{marker}\b[^>]*-->\s*```[a-z]*\n(.*?)```", text, flags=re.DOTALL
    )
    assert found, f"README.md has no code block after <!-- readme:{marker} -->"
    return found.group(1)


def test_ci_runs_exactly_the_readme_test_command() -> None:
    command = readme_block("test").strip()
    assert "\n" not in command
    ci = (REPO / ".ci" / "run").read_text(encoding="utf-8").splitlines()
    assert command in ci


def test_readme_manifest_example_validates(tmp_path: Path) -> None:
    text = README.read_text(encoding="utf-8")
    blocks = re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL)
    assert blocks, "README.md shows no manifest"
    for number, block in enumerate(blocks):
        path = tmp_path / f"readme-{number}.yaml"
        path.write_text(block, encoding="utf-8")
        result = subprocess.run(
            [sys.executable, "-m", "ksefctl", "validate", "-f", str(path)],
            capture_output=True,
            text=True,
        )
        assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def clone(tmp_path: Path) -> Iterator[Path]:
    """A copy of the repository's installable files, as a fresh clone has them."""
    root = tmp_path / "ksefctl"
    root.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for name in COPIED:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, root / name, ignore=ignore)
        elif source.exists():
            shutil.copy2(source, root / name)
    yield root
    playground.down(tmp_path / "sandbox")


def _reuse_installed_dependencies(clone: Path) -> None:
    python3 = shutil.which("python3")
    assert python3, "the README needs python3 on PATH"
    probe = subprocess.run(
        [python3, "-c", "import sys; print(sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    )
    if probe.stdout.strip() != str(sys.version_info[:2]):
        return  # compiled dependencies would not load: install from PyPI instead
    subprocess.run([python3, "-m", "venv", str(clone / ".venv")], check=True)
    (site,) = (clone / ".venv" / "lib").glob("python3*/site-packages")
    (site / "ksefctl-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")


def test_readme_demo_runs_verbatim_on_the_sandbox(clone: Path, tmp_path: Path) -> None:
    demo = readme_block("demo")
    sim_port, vault_port = free_port(), free_port()
    manifest = clone / "manifests" / "quickstart.yaml"
    # The one edit to the copy: its simulator moves off the default port.
    text = manifest.read_text(encoding="utf-8")
    assert f"127.0.0.1:{QUICKSTART_PORT}/v2" in text
    manifest.write_text(text.replace(f":{QUICKSTART_PORT}/", f":{sim_port}/"), encoding="utf-8")

    fresh = os.environ.get("KSEFCTL_README_FRESH") == "1"
    if not fresh:
        _reuse_installed_dependencies(clone)
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("VAULT_", "BAO_", "VIRTUAL_ENV", "PYTHON", "PIP_"))
    }
    # Reused dependencies bring no `bao` into the new venv: find the suite's one last.
    env["PATH"] = env.get("PATH", "/usr/bin:/bin") + os.pathsep + str(Path(sys.executable).parent)
    env["KSEFCTL_SANDBOX_DIR"] = str(tmp_path / "sandbox")
    env["KSEFCTL_SANDBOX_VAULT_PORT"] = str(vault_port)
    env["NO_COLOR"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"

    result = subprocess.run(
        ["bash", "-c", demo],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=900 if fresh else 240,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output

    # The ksefctl that ran is the one installed into the new venv from the copy.
    # (-I: the working directory must not put a ksefctl on sys.path by itself.)
    where = subprocess.run(
        [
            str(clone / ".venv" / "bin" / "python"),
            "-I",
            "-c",
            "import ksefctl; print(ksefctl.__file__)",
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(clone)
    assert (clone / ".venv" / "bin" / "ksefctl").exists()

    # up → plan → apply → masked secret → a second plan with nothing to do.
    first_plan = result.stdout.index("Plan: 4 to create, 0 to replace, 0 to revoke.")
    applied = result.stdout.index("Apply complete: 4 created, 0 replaced, 0 revoked.")
    masked = result.stdout.index("******** (masked)")
    second_plan = result.stdout.index(NO_CHANGES)
    assert first_plan < applied < masked < second_plan
    assert "managedBy:ksefctl" in result.stdout
    assert re.search(r"^referenceNumber +\S+", result.stdout, flags=re.MULTILINE)

    info = playground.read_info(tmp_path / "sandbox")
    assert info is not None
    assert info.sim_url == f"http://127.0.0.1:{sim_port}/v2"
    assert info.vault_addr == f"http://127.0.0.1:{vault_port}"
    vault = hvac.Client(url=info.vault_addr, token=info.vault_token)
    stored = {
        ("5265877635", "erp"),
        ("7762811692", "erp"),
        ("7762811692", "reader"),
        ("5260181596", "erp"),
    }
    for nip, token in stored:
        secret = vault.secrets.kv.v2.read_secret_version(
            path=f"ksef/sandbox/{nip}/{token}", mount_point="secret", raise_on_deleted_version=True
        )
        data, metadata = secret["data"]["data"], secret["data"]["metadata"]
        assert data["context"] == f"Nip:{nip}" and data["token"]
        assert metadata["custom_metadata"]["managedBy"] == "ksefctl"
        # Not one token value reached the terminal.
        assert data["token"] not in output
