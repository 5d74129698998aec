"""mrsr.demo: which bundle the demo runs, and what it writes (the command itself: tests/test_cli.py)."""

from __future__ import annotations

import json

import pytest

from mrsr.bundle_table import rank_bundles
from mrsr.demo import demo_bundle, demo_files, run_demo
from mrsr.errors import MrsrError


def test_demo_bundle_by_name_best_or_none():
    notes: list[str] = []
    assert demo_bundle("none", 2, notes.append) is None and notes == []
    assert demo_bundle("best", 2.5, notes.append) is None and "integer factors only" in notes.pop()
    with pytest.raises(MrsrError, match="integer factor"):
        demo_bundle("wasa", 2.5, notes.append)
    assert demo_bundle("wasa", 2, notes.append) == "wasa"  # named: it runs, with a note if it does harm
    scored, harmful = rank_bundles(2)
    notes.clear()
    assert demo_bundle("best", 2, notes.append) == (max(scored)[1] if scored else None)
    assert bool(harmful) == any("not considered" in n for n in notes)
    assert bool(scored) != any("running the baselines only" in n for n in notes)
    chosen = f"note: running {max(scored)[1] if scored else ''}, the best bundle"
    assert bool(scored) == any(n.startswith(chosen) for n in notes)


def test_run_demo_writes_its_files_once(tmp_path):
    lines: list[str] = []
    results = run_demo(tmp_path / "d", scale=4, bundle="none", device="cpu", log=lines.append)
    assert list(results) == ["zerofill", "bicubic"] and results["zerofill"].psnr > results["bicubic"].psnr
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == sorted(demo_files(list(results)))
    assert sorted(json.loads((tmp_path / "d" / "metrics.json").read_text())) == ["bicubic", "zerofill"]
    assert [line[:5] for line in lines] == ["[1/4]", "[2/4]", "[3/4]", "[3/4]", "[4/4]"]
    with pytest.raises(MrsrError, match="exists; pass overwrite=True"):
        run_demo(tmp_path / "d", scale=4, bundle="none", device="cpu", log=lines.append)
