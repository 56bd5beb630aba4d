"""Memory-aware inference through the pipeline: automatic settings recorded per unit, and a
target too large for this machine refused up front with a clear error while the rest run."""
from eksfold.config import DatabaseConfig
from eksfold.pipeline import run_pipeline
from eksfold.progress import TextProgress
from eksfold.results import load_summary

GOOD = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQFEVVHSL"


def test_too_large_target_is_refused_up_front_and_the_others_run(tmp_path, small_db, worker_env):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">normal\n{GOOD[:45]}\n>giant\n{(GOOD * 60)[:4000]}\n")
    run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny",
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       reporter=TextProgress(bars=False))
    df = load_summary(run.root).set_index("target")
    assert df.loc["normal", "infer_status"] == "done"
    assert df.loc["giant", "align_status"] == "invalid" == df.loc["giant", "infer_status"]
    err = df.loc["giant", "error"]
    assert "4000 residues" in err and "predicted" in err and "MB available" in err
    assert run.unit_status("align", "giant") == "missing"      # no work was spent on it
    rec = run.record("infer", "normal")
    assert rec.metrics["setting"] in ("default", "chunk", "lma")
    assert rec.metrics["chosen_by"].startswith("auto")
    assert rec.metrics["choice"]["fits"] and rec.attempts[-1]["error"] is None


def test_a_named_setting_is_used_and_recorded(tmp_path, small_db, worker_env):
    fasta = tmp_path / "in.fasta"
    fasta.write_text(f">one\n{GOOD[:40]}\n")
    run = run_pipeline(fasta, str(tmp_path / "run"), preset="tiny", settings="lma",
                       databases=DatabaseConfig(uniref90=str(small_db)),
                       reporter=TextProgress(bars=False))
    rec = run.record("infer", "one")
    assert rec.done and rec.metrics["setting"] == "lma" and rec.metrics["chosen_by"] == "run settings"


def test_measured_times_steer_the_choice_only_when_their_model_is_trustworthy():
    """A sweep taken on a loaded machine measures the neighbours: the choice then keeps the
    ladder's order (fastest first by design) instead of a noisy 'faster' frugal setting."""
    import pandas as pd

    from eksfold.memory.chooser import choose
    from eksfold.memory.costmodel import CostModel

    def table(noise):
        rows = []
        for i, L in enumerate((50, 100, 150, 200, 250)):
            for setting, t in (("default", 0.002 * L * L), ("chunk", 0.001 * L * L)):
                jitter = (1 + noise * (-1) ** i * (i + 1)) if setting == "chunk" else 1
                rows.append({"length": L, "setting": setting, "preset": "tiny", "device": "cpu",
                             "inference_s": t * jitter, "peak_rss_mb": 500 + L, "error": None})
        return pd.DataFrame(rows)

    clean, noisy = CostModel.fit(table(0.0)), CostModel.fit(table(0.6))
    assert choose(150, 10_000, clean).setting == "chunk"      # trusted: really twice as fast
    assert choose(150, 10_000, noisy).setting == "default"    # untrusted: the ladder decides
