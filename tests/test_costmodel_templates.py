"""The template stack in the memory model: the measured term per template structure.

Hand-computable sweep tables check the arithmetic (difference at 4 templates / 4, interpolated
between lengths, never negative) and that the chooser adds it; the committed tiny-preset sweep
(``profiles/cpu-2core/settings-tiny-templates.csv``) checks that the run-time model carries the
measured term: its prediction with 4 templates exceeds the one without by exactly that term.
"""
from __future__ import annotations

import pandas as pd
import pytest

from eksfold.memory.chooser import choose
from eksfold.memory.costmodel import PROFILES, CostModel


def sweep(extra_rows=()):
    rows = [{"length": L, "setting": "default", "preset": "tiny", "templates": 0,
             "template_stack": True, "device": "cpu", "inference_s": L / 10,
             "peak_rss_mb": 100 + L, "error": None} for L in (32, 64, 96)]
    return pd.DataFrame(rows + list(extra_rows))


def with_templates(L, mb, s, n=4, stack=True):
    return {"length": L, "setting": "default", "preset": "tiny", "templates": n,
            "template_stack": stack, "device": "cpu", "inference_s": s, "peak_rss_mb": mb,
            "error": None}


def test_template_term_by_hand():
    # 4 templates add 8 MB at L=32 and 24 MB at L=96: 2 and 6 MB per template
    model = CostModel.fit(sweep([with_templates(32, 140, 4.0), with_templates(96, 220, 10.0),
                                 with_templates(64, 1.0, 1.0, n=0, stack=False)]))
    base = model.predict(64, "default")
    assert base == pytest.approx(164, rel=1e-6)        # the stack-off row is another network
    assert model.predict(64, "default", templates=4) - base == pytest.approx(4 * 4.0)  # 4 MB/tpl
    assert model.predict(200, "default", templates=2) - model.predict(200, "default") \
        == pytest.approx(2 * 6.0)                       # held at the longest measured length
    assert model.predict_time(32, "default", templates=4) - model.predict_time(32, "default") \
        == pytest.approx(4.0 - 3.2)
    assert model.predict(64, "default", templates=0) == base


def test_negative_difference_counts_as_zero():
    model = CostModel.fit(sweep([with_templates(32, 120, 3.0), with_templates(96, 190, 9.0)]))
    assert model.predict(32, "default", templates=4) == model.predict(32, "default")


def test_chooser_adds_the_template_term():
    model = CostModel.fit(sweep([with_templates(32, 140, 4.0), with_templates(96, 220, 10.0)]))
    plain = choose(64, 10_000, model)
    four = choose(64, 10_000, model, templates=4)
    assert four.predicted_mb - plain.predicted_mb == pytest.approx(16.0, abs=0.1)
    # a budget between the two: fits without templates, not with four
    tight = plain.predicted_mb * (1 + plain.margin) + 5
    assert choose(64, tight, model).fits and not choose(64, tight, model, templates=4).fits


def test_committed_tiny_sweep_carries_the_measured_term():
    table = pd.read_csv(PROFILES / "cpu-2core" / "settings-tiny-templates.csv")
    ok = table[table["error"].isna() & table["template_stack"].astype(bool)]
    model = CostModel.from_profile("cpu-2core", "tiny")
    setting = ok["setting"].iloc[0]
    assert (setting, "peak_rss_mb") in model.templates
    for L in sorted(set(ok[ok["templates"] == 4]["length"])):
        m0 = ok[(ok["length"] == L) & (ok["templates"] == 0)]["peak_rss_mb"].mean()
        m4 = ok[(ok["length"] == L) & (ok["templates"] == 4)]["peak_rss_mb"].mean()
        term = max(0.0, m4 - m0)          # measured: what 4 templates added at this length
        assert model.predict(L, setting, templates=4) - model.predict(L, setting) \
            == pytest.approx(term, abs=1e-6)
