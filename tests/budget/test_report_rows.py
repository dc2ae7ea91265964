"""The report's tallies (sections, kinds, per-segment rows) are built when first read: a report
read any way (dumped, compared, copied, one field read first or not) says the same as one built
with them up front."""

from __future__ import annotations

import copy

from rp_context.budget import BudgetReport
from rp_context.pipeline import build_prompt, load_cast, load_setup
from rp_context.synth import synthetic_chat
from rp_context.tokens import TiktokenCounter


def _report(repo_dir) -> BudgetReport:
    cast = load_cast([repo_dir / "cards" / "wren-halloway.json"])
    fitted = build_prompt(cast, synthetic_chat(60, seed=3), load_setup(), TiktokenCounter(),
                          n_ctx=1024, reserve=200)
    return fitted.report


def _eager(r: BudgetReport) -> BudgetReport:
    """The same report with its rows built up front, as a plain model holds them."""
    fields = {k: getattr(r, k) for k in BudgetReport.model_fields}
    return BudgetReport.model_construct(**fields)


def test_rows_read_late_match_rows_built_up_front(repo_dir) -> None:
    eager = _eager(_report(repo_dir))
    assert eager.segments and any(row["status"] == "evicted" for row in eager.segments)
    assert _report(repo_dir).model_dump_json() == eager.model_dump_json()
    assert _report(repo_dir).model_dump() == eager.model_dump()
    assert list(_report(repo_dir).model_dump()) == list(BudgetReport.model_fields)
    assert _report(repo_dir) == eager
    assert repr(_report(repo_dir)) == repr(eager)
    assert copy.deepcopy(_report(repo_dir)).segments == eager.segments
    assert dict(_report(repo_dir))["segments"] == eager.segments
    assert _report(repo_dir).model_copy().segments == eager.segments
    for name in ("sections", "kinds", "structure_tokens", "history_share", "segments", "tokens"):
        r = _report(repo_dir)
        assert getattr(r, name) == getattr(eager, name)
        assert r.model_dump_json() == eager.model_dump_json()
