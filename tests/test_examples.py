"""The files in examples/ and manifests/ are ready to copy.

The CI files get structural checks (offline: no workflow-schema download):
triggers, jobs, Vault login by id token, and every ``ksefctl`` command line in
them must parse with ksefctl's own argument parser.  Every example manifest
validates, and the ones for CI agree with the pipelines on how Vault login
works.
"""

from __future__ import annotations

import contextlib
import io
import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml

from ksefctl import cli
from ksefctl.manifest import load_manifests
from ksefctl.vault.config import VaultLogin
from ksefctl.vault.login import build_login_request
from tests.conftest import REPO

EXAMPLES = REPO / "examples"
GITHUB = EXAMPLES / "github" / "ksefctl.yml"
GITLAB = EXAMPLES / "gitlab" / ".gitlab-ci.yml"
JWT_MANIFEST = EXAMPLES / "manifests" / "ci-jwt.yaml"
OFFICE = EXAMPLES / "manifests" / "accounting-office.yaml"
MANIFESTS = sorted([*EXAMPLES.rglob("*.yaml"), *(REPO / "manifests").glob("*.yaml")])
SHELL_OPERATORS = {"|", "||", "&&", ";", ">", ">>", "2>", "<"}


def _load(path: Path) -> dict[Any, Any]:
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def ksefctl_commands(script: str, variables: dict[str, str]) -> list[list[str]]:
    """The argv of every ``ksefctl …`` command in a shell script, variables substituted."""
    commands: list[list[str]] = []
    for line in script.splitlines():
        for name, value in variables.items():
            line = line.replace(name, value)
        if "ksefctl" not in line or line.lstrip().startswith("#"):
            continue
        words = shlex.split(line, comments=True)
        for start, word in enumerate(words):
            if word != "ksefctl" or (start and words[start - 1] not in SHELL_OPERATORS):
                continue
            argv = []
            for arg in words[start + 1 :]:
                if arg in SHELL_OPERATORS or arg.startswith((">", "2>")):
                    break
                argv.append(arg)
            commands.append(argv)
    return commands


def assert_parses(argv: list[str]) -> None:
    stderr = io.StringIO()
    try:
        with contextlib.redirect_stderr(stderr):
            cli.build_parser().parse_args(argv)
    except SystemExit as exit:
        pytest.fail(f"ksefctl {shlex.join(argv)}: {stderr.getvalue().strip()} ({exit})")


def test_github_workflow_plans_on_pull_requests_and_applies_on_main() -> None:
    workflow = _load(GITHUB)
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as true
    assert isinstance(triggers, dict) and {"pull_request", "push"} <= set(triggers)
    assert triggers["push"]["branches"] == ["main"]
    assert workflow["permissions"]["id-token"] == "write"  # the Vault login's id token
    assert workflow["env"]["VAULT_ADDR"].startswith("https://")
    jobs = workflow["jobs"]
    assert {"plan", "apply"} <= set(jobs)
    assert "pull_request" in jobs["plan"]["if"]
    assert "refs/heads/main" in jobs["apply"]["if"]

    commands: dict[str, list[list[str]]] = {}
    for name, job in jobs.items():
        assert job["runs-on"] and job["steps"], name
        for step in job["steps"]:
            assert ("uses" in step) != ("run" in step), f"{name}: {step}"
            if "run" in step:
                found = ksefctl_commands(step["run"], {"${{ matrix.shard }}": "1/4"})
                commands.setdefault(name, []).extend(found)
    _check_pipeline_commands(commands)
    plan_script = next(s["run"] for s in jobs["plan"]["steps"] if "plan" in s.get("run", ""))
    assert "GITHUB_STEP_SUMMARY" in plan_script


def test_gitlab_pipeline_plans_on_merge_requests_and_applies_on_the_default_branch() -> None:
    pipeline = _load(GITLAB)
    stages = pipeline["stages"]
    jobs = {
        name: job for name, job in pipeline.items() if isinstance(job, dict) and "script" in job
    }
    assert {"plan", "apply"} <= set(jobs)
    templates = {name: job for name, job in pipeline.items() if name.startswith(".")}
    commands: dict[str, list[list[str]]] = {}
    for name, job in jobs.items():
        assert job["stage"] in stages, name
        assert job["rules"], name
        scripts = [*pipeline["default"]["before_script"], *job["script"]]
        assert all(isinstance(line, str) for line in scripts), name
        found = ksefctl_commands("\n".join(job["script"]), {'"$SHARD"': "1/4"})
        commands[name] = found
        if name in ("plan", "apply"):
            # The Vault login's id token, under the name the JWT manifest reads.
            template = templates[job["extends"]]
            assert "VAULT_JWT" in template["id_tokens"]
            assert template["id_tokens"]["VAULT_JWT"]["aud"]
    assert any("merge_request_event" in rule["if"] for rule in jobs["plan"]["rules"])
    assert any("CI_DEFAULT_BRANCH" in rule["if"] for rule in jobs["apply"]["rules"])
    _check_pipeline_commands(commands)


def _check_pipeline_commands(commands: dict[str, list[list[str]]]) -> None:
    for argvs in commands.values():
        for argv in argvs:
            assert_parses(argv)
    plans = [argv for argv in commands["plan"] if argv[0] == "plan"]
    applies = [argv for argv in commands["apply"] if argv[0] == "apply"]
    assert plans and all("--detailed-exitcode" in argv for argv in plans)
    assert applies and all("--auto-approve" in argv for argv in applies)


def test_the_command_line_extractor_sees_through_redirections_and_pipes() -> None:
    script = 'code=0\nksefctl plan -f t/ --shard "$S" > plan.txt || code=$?\nx | ksefctl bogus'
    found = ksefctl_commands(script, {'"$S"': "1/2"})
    assert found == [["plan", "-f", "t/", "--shard", "1/2"], ["bogus"]]
    with pytest.raises(pytest.fail.Exception):
        assert_parses(found[1])


@pytest.mark.parametrize("manifest", MANIFESTS, ids=lambda path: str(path.relative_to(REPO)))
def test_example_manifest_validates(manifest: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["validate", "-f", str(manifest)]) == 0, capsys.readouterr().err


def test_accounting_office_uses_one_certificate_for_fifty_companies() -> None:
    desired = load_manifests([str(OFFICE)])
    contexts = desired.contexts
    assert len(contexts) == 50
    assert len({c.context for c in contexts}) == 50
    assert {str(c.auth.secret) for c in contexts} == {"secret/ksef-admin/office-seal"}
    assert {c.auth.method for c in contexts} == {"certificate"}


def test_jwt_manifest_logs_in_the_way_the_pipelines_configure_vault() -> None:
    (policy,) = load_manifests([str(JWT_MANIFEST)]).policies
    assert policy.vault_auth is not None
    login = VaultLogin.from_spec(policy.vault_auth)
    assert (login.method, login.mount_path, login.role) == ("jwt", "jwt", "ksefctl")
    # The role and mount the pipelines' setup comments create.
    for pipeline in (GITHUB, GITLAB):
        text = pipeline.read_text(encoding="utf-8")
        assert "auth enable jwt" in text
        assert re.search(rf"auth/{login.mount_path}/role/{login.role}\b", text)
    # GitLab hands the id token over in $VAULT_JWT: that is the login's JWT.
    request = build_login_request(login, {"VAULT_JWT": "header.payload.signature"})
    assert request is not None and request.path == "auth/jwt/login"
    assert request.payload() == {"role": "ksefctl", "jwt": "header.payload.signature"}


PLAN_POLICY = EXAMPLES / "vault" / "ksefctl-plan-policy.hcl"
APPLY_POLICY = EXAMPLES / "vault" / "ksefctl-policy.hcl"
OPERATIONS = REPO / "docs" / "operations.md"


def _capabilities(policy: Path) -> dict[str, set[str]]:
    """``path "…" { capabilities = [...] }`` blocks of an HCL policy (the only shape used)."""
    text = re.sub(r"#.*", "", policy.read_text(encoding="utf-8"))
    blocks = re.findall(r'path\s+"([^"]+)"\s*\{\s*capabilities\s*=\s*\[([^\]]*)\]\s*\}', text)
    assert blocks, policy
    return {path: set(re.findall(r'"([^"]+)"', caps)) for path, caps in blocks}


def test_github_workflow_runs_daily_and_queues_plans_with_applies() -> None:
    workflow = _load(GITHUB)
    triggers = workflow.get("on", workflow.get(True))
    crons = [entry["cron"] for entry in triggers["schedule"]]
    assert len(crons) == 1 and len(crons[0].split()) == 5
    assert crons[0].split()[2:] == ["*", "*", "*"]  # every day
    jobs = workflow["jobs"]
    # The scheduled run applies (on main); pull requests only plan.
    assert "event_name != 'pull_request'" in jobs["apply"]["if"]
    assert "refs/heads/main" in jobs["apply"]["if"]
    # One group per shard, the same for plans and applies: never both over one company.
    groups = {name: jobs[name]["concurrency"]["group"] for name in ("plan", "apply")}
    assert groups["plan"] == groups["apply"] == "ksefctl-ksef-${{ matrix.shard }}"
    assert "concurrency" not in workflow  # not per ref any more
    assert jobs["apply"]["concurrency"]["cancel-in-progress"] is False


def test_github_summaries_carry_errors_too() -> None:
    jobs = _load(GITHUB)["jobs"]
    plan_script = next(
        s["run"] for s in jobs["plan"]["steps"] if "ksefctl plan" in s.get("run", "")
    )
    assert "2> plan.err" in plan_script
    summary = plan_script[plan_script.index("{") : plan_script.index('>> "$GITHUB_STEP_SUMMARY"')]
    assert "cat plan.txt" in summary and "cat plan.err" in summary
    apply_script = next(
        s["run"] for s in jobs["apply"]["steps"] if "ksefctl apply" in s.get("run", "")
    )
    assert "2>&1 | tee apply.txt" in apply_script and "pipefail" in apply_script


def test_github_plans_and_applies_log_into_vault_as_different_roles() -> None:
    workflow = _load(GITHUB)
    jobs = workflow["jobs"]
    assert jobs["plan"]["env"]["KSEFCTL_VAULT_ROLE"] == "ksefctl-plan"
    assert "KSEFCTL_VAULT_ROLE" not in jobs["apply"].get("env", {})
    assert "KSEFCTL_VAULT_ROLE" not in workflow["env"]
    assert jobs["apply"]["environment"] == "ksef-production"
    text = GITHUB.read_text(encoding="utf-8")
    plan_role = _role_command(text, "ksefctl-plan")
    assert '"event_name":"pull_request"' in plan_role and "token_policies=ksefctl-plan" in plan_role
    apply_role = _role_command(text, "ksefctl")
    assert "environment:ksef-production" in apply_role and "refs/heads/main" in apply_role
    assert "token_policies=ksefctl " in apply_role


def test_gitlab_pipeline_is_scheduled_split_and_queued() -> None:
    pipeline = _load(GITLAB)
    text = GITLAB.read_text(encoding="utf-8")
    assert "pipeline_schedules" in text  # how to create the schedule
    assert any("schedule" in rule["if"] for rule in pipeline["apply"]["rules"])
    assert not any("schedule" in rule["if"] for rule in pipeline["plan"]["rules"])
    assert pipeline["plan"]["resource_group"] == pipeline["apply"]["resource_group"]
    assert "$SHARD" in pipeline["plan"]["resource_group"]
    assert pipeline["plan"]["variables"]["KSEFCTL_VAULT_ROLE"] == "ksefctl-plan"
    assert "KSEFCTL_VAULT_ROLE" not in pipeline.get("variables", {})
    assert any("2>&1" in line for line in pipeline["plan"]["script"] if "ksefctl plan" in line)
    assert any("2>&1 | tee" in line for line in pipeline["apply"]["script"])
    assert "pipefail" in " ".join(pipeline["apply"]["script"])
    plan_role = _role_command(text, "ksefctl-plan")
    assert "merge_request_event" in plan_role and "token_policies=ksefctl-plan" in plan_role
    apply_role = _role_command(text, "ksefctl")
    assert '"environment":"ksef-production"' in apply_role and '"ref":"main"' in apply_role


def test_plans_run_without_writing_cached_sessions() -> None:
    for pipeline in (GITHUB, GITLAB):
        text = pipeline.read_text(encoding="utf-8")
        plans = [line for line in text.splitlines() if "ksefctl plan " in line and "#" not in line]
        assert plans and all("--no-session-cache" in line for line in plans), pipeline


def test_the_plan_policy_reads_login_material_and_writes_nothing() -> None:
    plan = _capabilities(PLAN_POLICY)
    apply = _capabilities(APPLY_POLICY)
    assert set().union(*plan.values()) <= {"read", "list"}
    # A plan logs into KSeF: it needs the login material (and says so).
    assert plan["secret/data/ksef-admin/*"] == {"read"}
    assert "logs into KSeF" in PLAN_POLICY.read_text(encoding="utf-8")
    # No locks, no sessions, no deletes.
    assert not any(".ksefctl" in path or "/delete/" in path for path in plan)
    assert set(plan) < set(apply)


def test_operations_doc_shows_the_vault_commands_of_both_roles() -> None:
    text = _words(OPERATIONS.read_text(encoding="utf-8"))
    for pipeline in (GITHUB, GITLAB):
        for role in ("ksefctl-plan", "ksefctl"):
            assert _words(_role_command(pipeline.read_text(encoding="utf-8"), role)) in text
    assert "vault policy write ksefctl-plan examples/vault/ksefctl-plan-policy.hcl" in text
    assert "KSEFCTL_VAULT_ROLE" in text


def _words(text: str) -> str:
    """Shell text with comment markers, line continuations and indentation folded away."""
    return re.sub(r"[\s\\#]+", " ", text)


def test_the_role_variable_overrides_the_manifest_role() -> None:
    from ksefctl.cli._common import with_vault_role

    desired = load_manifests([str(JWT_MANIFEST)])
    assert with_vault_role(desired, {}) is desired
    (policy,) = with_vault_role(desired, {"KSEFCTL_VAULT_ROLE": "ksefctl-plan"}).policies
    login = VaultLogin.from_spec(policy.vault_auth)
    request = build_login_request(login, {"VAULT_JWT": "header.payload.signature"})
    assert request is not None
    assert request.payload() == {"role": "ksefctl-plan", "jwt": "header.payload.signature"}


def _role_command(text: str, role: str) -> str:
    """The ``vault write auth/jwt/role/ROLE …`` command (continuation lines joined)."""
    match = re.search(rf"vault write auth/jwt/role/{re.escape(role)} (?:[^\n]*\\\n)*[^\n]*", text)
    assert match, role
    return match.group(0)
