"""The contract checker itself must catch what it is meant to catch."""

from __future__ import annotations

import json

from tests.contract import ContractChecker

TOKENS = "https://sim/v2/tokens"


def test_accepts_a_documented_request_and_response() -> None:
    checker = ContractChecker.load()
    body = json.dumps({"permissions": ["InvoiceRead"], "description": "erp token"}).encode()
    checker.check_request("POST", TOKENS, body, "application/json")
    response = {
        "referenceNumber": "20251010-EC-1DCE3E3000-12ECB5B36E-45",
        "token": "20251010-EC-1DCE3E3000-12ECB5B36E-45|nip-5265877635|" + "a" * 64,
    }
    checker.check_response(
        "POST", TOKENS, 202, {"content-type": "application/json"}, json.dumps(response).encode()
    )
    checker.assert_clean()
    assert checker.checked == 2


def test_catches_unknown_permission_and_bad_query() -> None:
    checker = ContractChecker.load()
    body = json.dumps({"permissions": ["Everything"], "description": "erp token"}).encode()
    checker.check_request("POST", TOKENS, body, "application/json")
    checker.check_request("GET", TOKENS + "?pageSize=500&status=Bogus", None, None)
    text = "\n".join(checker.violations)
    assert "Everything" in text
    assert "pageSize" in text
    assert "status" in text


def test_catches_undocumented_status_wrong_body_and_unknown_path() -> None:
    checker = ContractChecker.load()
    checker.check_response("GET", TOKENS, 418, {"content-type": "application/json"}, b"{}")
    checker.check_response(
        "GET", TOKENS, 200, {"content-type": "application/json"}, b'{"tokens": "nope"}'
    )
    checker.check_response("GET", "https://sim/v2/nowhere", 200, {}, b"")
    assert len(checker.violations) == 3


def test_admin_paths_outside_v2_are_ignored() -> None:
    checker = ContractChecker.load()
    checker.check_request("POST", "http://sim/_sim/faults", b"{}", "application/json")
    checker.assert_clean()
    assert checker.checked == 0


def test_literal_paths_win_over_templates() -> None:
    checker = ContractChecker.load()
    checker.check_request("GET", "https://sim/v2/auth/sessions?pageSize=10", None, None)
    checker.assert_clean()
