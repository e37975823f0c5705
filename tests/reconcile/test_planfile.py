"""Saved plans: what was reviewed is what gets applied, or nothing is."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ksefctl.errors import KsefctlError
from ksefctl.reconcile.model import PlanOptions
from ksefctl.reconcile.planfile import PlanFileError, load_plan, save_plan
from tests.reconcile.world import NIP_A
from tests.support.sample_plan import PLAN

OPTIONS = PlanOptions(adopt=True, prune=True, force_rotate=frozenset({("acme", NIP_A, "erp")}))
SOURCES = {"tokens.yaml": "0" * 64, "more/b.yaml": "f" * 64}


def test_a_saved_plan_round_trips_exactly(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(path, PLAN, sources=SOURCES, options=OPTIONS)
    saved = load_plan(path)
    assert saved.plan == PLAN
    assert saved.plan.created_at == PLAN.created_at  # not part of Plan equality
    assert [c.keep_until for c in saved.plan.changes] == [c.keep_until for c in PLAN.changes]
    assert saved.sources == SOURCES
    assert saved.options == OPTIONS
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_default_options_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(path, PLAN, sources={}, options=PlanOptions())
    assert load_plan(path).options == PlanOptions()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"\xff\xfe", "not a ksefctl plan file"),
        (b"{not json", "not a ksefctl plan file (invalid JSON at line 1)"),
        (b'{"apiVersion": "ksefctl/v1"}', "not a ksefctl plan file"),
        (b'{"kind": "ksefctl-plan", "format_version": "2"}', "plan format '2'"),
        (b'{"kind": "ksefctl-plan", "format_version": "1"}', "corrupt plan file (missing field"),
    ],
)
def test_foreign_or_broken_files_are_refused_in_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    with pytest.raises(KsefctlError) as caught:
        load_plan(path)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_tampered_fields_are_refused(tmp_path: Path) -> None:
    path = tmp_path / "plan.json"
    save_plan(path, PLAN, sources=SOURCES, options=OPTIONS)
    good = json.loads(path.read_text())
    damages: list[Callable[[Any], object]] = [
        lambda d: d["plan"]["changes"][0].update(action="destroy"),
        lambda d: d["plan"]["changes"][0].update(context="Pesel:123"),
        lambda d: d["plan"]["changes"][0].update(delete_secret="yes"),
        lambda d: d["plan"]["changes"][0].update(permissions=["InvoiceRead", "InvoiceRead"]),
        lambda d: d["plan"]["notes"][0].update(until="tomorrow"),
        lambda d: d["options"].update(force_rotate="all"),
        lambda d: d["plan"].update(format_version="2"),
    ]
    for damage in damages:
        broken = json.loads(json.dumps(good))
        damage(broken)
        path.write_text(json.dumps(broken))
        with pytest.raises(PlanFileError, match="corrupt plan file"):
            load_plan(path)


def test_a_missing_file_is_a_readable_error(tmp_path: Path) -> None:
    with pytest.raises(PlanFileError, match="cannot read plan file"):
        load_plan(tmp_path / "nope.json")
    with pytest.raises(PlanFileError, match="cannot write plan file"):
        save_plan(tmp_path / "no" / "dir.json", PLAN, sources={}, options=PlanOptions())
