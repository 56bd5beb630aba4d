"""The figure of the jackhmmer vs MMseqs2 comparison (``python -m benchmarks.align``)."""
from __future__ import annotations

import numpy as np


def plot_compare(df, summary: dict, path, batches=None) -> None:
    """Left: per-query time vs database size, measured and fitted to UniRef90's size.
    Middle: jackhmmer's hits (E <= 1e-3) found by MMseqs2 and MSA depth / Neff, real database.
    Third (with ``batches``): MMseqs2's per-query CPU against batch size, per database size.
    Fourth (with ``summary["stages"]``): MMseqs2's prefilter and alignment parts vs size."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    with_batches = batches is not None and len(batches) > 0
    stages = summary.get("stages")
    panels = 2 + with_batches + bool(stages)
    rows = 1 if panels == 2 else 2
    fig, axes = plt.subplots(rows, 2, figsize=(13, 5.2 * rows))
    axes = axes.ravel()
    if panels == 3:
        axes[3].set_visible(False)
    ax, bx = axes[0], axes[1]
    end = summary["uniref90_size"]
    palette = iter(["tab:blue", "tab:green", "tab:purple", "tab:orange"])
    colours = {t: ("tab:red" if t == "jackhmmer" else next(palette)) for t in summary["per_query_s"]}
    for tool, points in summary["per_query_s"].items():
        sizes = np.array(sorted(int(k) for k in points))
        ax.plot(sizes, [points[s] if s in points else points[str(s)] for s in sizes], "o",
                color=colours[tool], label=f"{tool} (measured)")
        fit = summary["fits"][tool]
        if fit.get("exponent") is not None:
            xs = np.geomspace(sizes.min(), end, 50)
            ax.plot(xs, fit["coefficient"] * xs ** fit["exponent"], "--", color=colours[tool],
                    label=f"fit ~ size^{fit['exponent']:.2f}: {fit['extrapolated_s']:.0f} s at 150 M")
    bm = summary.get("batch_model") or {}
    if bm.get("per_query_at_batch_s"):
        pb, pq, q = bm["per_batch_fit"], bm["per_query_fit"], bm["batch"]
        xs = np.geomspace(df.db_size.min(), end, 50)
        ax.plot(xs, pb["coefficient"] * xs ** pb["exponent"] / q
                + pq["coefficient"] * xs ** pq["exponent"], "-", color="black", lw=1.2,
                label=f"MMseqs2 -s {summary['chosen_sensitivity']:g}, batch of {q} (per-batch + "
                      f"per-query fit): {bm['per_query_at_batch_s']:.1f} s at 150 M")
    bounded = summary.get("speedup_at_uniref90_stages", {}).get("mmseqs2_s")
    if stages and bounded:
        ax.plot([end], [bounded["total"]], "*", ms=12, color="tab:brown",
                label=f"MMseqs2 -s {summary['chosen_sensitivity']:g}, parts bounded apart "
                      f"(prefilter fit + capped alignments): {bounded['total']:.1f} s at 150 M")
    reps = (summary.get("repeats") or {}).get("per_repeat") or []
    if reps:   # each repeat's extrapolation of both tools (straight lines; capped alignments)
        jh = [r["jackhmmer_at_s"] for r in reps]
        mm = [r["mmseqs2_at_s"]["total"] for r in reps]
        ax.plot([end * 1.08] * len(jh), jh, "_", ms=14, mew=2, color="tab:red")
        ax.plot([end * 1.08] * len(mm), mm, "_", ms=14, mew=2, color="tab:brown",
                label=f"{len(reps)} repeats in turns (jackhmmer red, MMseqs2 brown): "
                      f"{summary['repeats']['ratio_min']}-{summary['repeats']['ratio_max']}x")
    ax.axvline(end, color="grey", lw=0.8)
    ax.set(xscale="log", yscale="log", xlabel="database size (sequences)",
           ylabel="CPU time per query (s)")
    ax.set_title("jackhmmer / MMseqs2 at 150 M (all-point fit; last-two-size slope): " + ", ".join(
        f"{t.split(' ', 1)[1]} {x}x; {summary.get('speedup_at_uniref90_last_two', {}).get(t, '?')}x"
        for t, x in summary["speedup_at_uniref90"].items())
        + (f"\nparts bounded apart (-s {summary['chosen_sensitivity']:g}): "
           f"{summary['speedup_at_uniref90_stages']['conservative']}x conservative, "
           f"{summary['speedup_at_uniref90_stages']['last_two']}x last-two"
           if bounded else ""), fontsize=9)
    ax.legend(fontsize=7, loc="upper left")
    sens = summary["sensitivity"]
    labels = [f"-s {s}" for s in sens]
    x = np.arange(len(labels))
    bx.bar(x, [v["fraction_found"] * 100 for v in sens.values()], color="tab:blue")
    bx.axhline(80, color="grey", ls=":", lw=1)
    for i, v in enumerate(sens.values()):
        bx.text(i, v["fraction_found"] * 100 + 1, f"{v['found']}/{v['jackhmmer_hits']}\n"
                f"depth {v['mean_depth']:.0f}, Neff {v['mean_neff']:.0f}", ha="center", fontsize=8)
    j = summary["jackhmmer_small_db"]
    bx.set(xticks=x, xticklabels=labels, ylim=(0, 115), ylabel="% of jackhmmer hits found")
    bx.set_title(f"MMseqs2 vs jackhmmer hits (E <= {summary['evalue']:g}), real 20,000 sequences;\n"
                 f"jackhmmer MSA: {j['mean_depth']:.0f} rows, Neff {j['mean_neff']:.0f}", fontsize=9)
    if with_batches:
        cx = axes[2]
        for size, d in batches.groupby("db_size"):
            d = d.sort_values("batch")
            cx.plot(d.batch, d.per_query_cpu_s, "o-", label=f"{int(size):,} sequences")
        cx.set(xscale="log", yscale="log", xlabel="queries per MMseqs2 batch",
               ylabel="CPU time per query (s)")
        cx.set_title(f"MMseqs2 -s {summary['chosen_sensitivity']:g}: per-batch cost shared by "
                     "the batch's queries", fontsize=9)
        cx.legend(fontsize=8)
    if stages:
        dx = axes[3]
        for module, colour in (("prefilter", "tab:blue"), ("align", "tab:orange"),
                               ("result2profile", "tab:grey")):
            pts = stages[module]["per_query_s"]
            sizes = sorted(int(k) for k in pts)
            dx.plot(sizes, [pts[k] if k in pts else pts[str(k)] for k in sizes], "o-",
                    color=colour, label=f"{module} ~ size^{stages[module]['fit']['exponent']}")
        per = stages["align"]["alignments_per_query"]
        for k, v in per.items():
            y = stages["align"]["per_query_s"]
            dx.annotate(f"{v:,.0f} aln/query", (int(k), y[k] if k in y else y[str(k)]),
                        fontsize=7, textcoords="offset points", xytext=(0, 6))
        dx.set(xscale="log", yscale="log", xlabel="database size (sequences)",
               ylabel="CPU time per query, one thread (s)")
        dx.set_title(f"MMseqs2 -s {summary['chosen_sensitivity']:g}, 3 iterations: alignments "
                     f"capped at {stages['align']['alignments_cap_per_query']:,} per query",
                     fontsize=9)
        dx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
