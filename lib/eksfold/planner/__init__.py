"""The planner: how long a run will take and what it will cost, before it is launched.

>>> from eksfold import planner
>>> p = planner.plan("data/cameo92/targets.fasta", msa_mode="mmseqs2", spot=True,
...                  deadline="45m")                                    # doctest: +SKIP
>>> print(p.summary())                                                   # doctest: +SKIP

From the targets' lengths, per-target costs per stage (:mod:`.costs`: a named reference profile
of published figures for GPUs, or curves fitted to this machine's own unit records), fixed
costs (node start, image pull, Pod start, worker load) and a cluster description
(:mod:`.cluster`: the NodePools in ``cluster/`` with a shipped price table, or a YAML), it
simulates the schedule the executors would produce, with their own sharding
(:func:`eksfold.sharding.plan_shards`) and size classes (:class:`eksfold.k8s.jobs.Sizing`):
:mod:`.simulate` for Kubernetes, :mod:`.localsim` for the local executor. :mod:`.search` finds
the smallest cluster for a deadline or the fastest for a budget.
"""
from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, TargetError
from .cluster import ClusterSpec, NodePool, load_cluster, local_cluster
from .karpenter import default_cluster
from .costs import Costs, FixedCosts, gpu_profile_costs, reference_costs, stage_costs
from .model import Plan, fmt_duration, parse_duration
from .saved import load_plan, makespan_comparison, planned_vs_actual, save_plan
from .search import InfeasiblePlan, best_window, fastest_for_budget, smallest_for_deadline

__all__ = ["plan", "Plan", "ClusterSpec", "NodePool", "Costs", "FixedCosts", "InfeasiblePlan",
           "default_cluster", "load_cluster", "local_cluster", "reference_costs", "stage_costs",
           "save_plan", "load_plan", "planned_vs_actual", "makespan_comparison", "target_lengths",
           "fmt_duration", "parse_duration", "size_sweep"]


def target_lengths(targets, limit: int | None = None, preset: str | None = None) -> dict[str, int]:
    """id -> length from a FASTA path or packaged set name, Targets, a dict, or lengths.
    ``preset``: read the file as that preset's run does (OpenFold3: a complex is one target
    whose length is its token count)."""
    if isinstance(targets, (str, Path)):
        from ..pipeline import load_targets_for_run

        backend = None
        if preset is not None:
            from ..models import get_backend
            backend = get_backend(preset)
        found, _, _ = load_targets_for_run(targets, limit=limit, backend=backend)
        out = {t.id: t.length for t in found}
    elif isinstance(targets, dict):
        out = dict(targets)
    else:
        items = list(targets)
        out = {}
        for i, t in enumerate(items):
            if isinstance(t, int):
                out[f"L{i + 1:06d}-{t}"] = t
            else:
                out[t.id] = t.length
    for tid, n in out.items():
        if not isinstance(n, int) or n <= 0:
            raise TargetError(tid, f"length {n!r}: expected a positive number of residues")
    if limit:
        out = dict(list(out.items())[:limit])
    if not out:
        raise ConfigError("no targets to plan")
    return out


def _cluster(cluster) -> ClusterSpec:
    if cluster is None:
        return default_cluster()
    if isinstance(cluster, ClusterSpec):
        return cluster
    return load_cluster(cluster)


def plan(targets, cluster=None, profile: str | None = None, msa_mode: str = "jackhmmer",
         spot: bool = False, deadline=None, budget: float | None = None, relax: bool = False,
         batch_window: float | None = None, costs: Costs | None = None, local: bool = False,
         workers: dict | None = None, limit: int | None = None,
         memory: tuple | None = None, mmseqs_sensitivity: float | None = None,
         mmseqs_index_gib: float | None = None, msa_cache_hit: float = 0.0,
         templates: str | None = None, score: bool = False, preset: str | None = None,
         objective: str = "nodes") -> Plan:
    """Predict the schedule, makespan and cost of running ``targets``.

    Parameters
    ----------
    targets : FASTA path, packaged set name, list of Targets, dict id -> length, or lengths
    cluster : ClusterSpec, a cluster YAML path, or None for the one in ``cluster/``
    profile : the cost profile for GPU inference: ``reference-*`` (published figures, default
        ``reference-af2-v100``) or a measured GPU profile (``gpu-*``: its settings.csv)
    msa_mode : "jackhmmer" or "mmseqs2"
    spot : price the pools that allow spot at spot prices (the plan also gives the cost if
        every spot node fell back to on-demand)
    deadline : "45m", "8h", seconds: plan the smallest cluster that meets it
    objective : with ``deadline``: "nodes" (the fewest nodes, then the lowest cost) or "cost"
        (the lowest cost, then the fewest nodes)
    budget : USD: plan the fastest cluster within it
    batch_window : None (default): the streaming executor (every stage's Job submitted at the
        start, dependent ones after the planned lead; workers take targets as their inputs
        are committed); seconds: the classic executor with this inference batch window
    costs : per-target and fixed costs (default: the reference profile; local: the stages')
    local : plan the local executor on this machine (``workers``: per stage)
    memory : local only: (capacity MB, CPU cost model): inference units wait until their
        predicted peak fits beside the running ones, as the local executor does
    mmseqs_sensitivity : the MMseqs2 -s of the run (default: the one the align benchmark chose)
    mmseqs_index_gib : the MMseqs2 database index in GiB: alignment Pods ask for its memory,
        as the executor does from the index files (:mod:`eksfold.alignment.podmemory`)
    msa_cache_hit : fraction of targets whose MSA is already in the cache (an assumption)
    templates : the template search route of the run ("hhsearch", "hmmsearch"; None: no
        templates): its measured seconds (:mod:`eksfold.templates.cost`) are added to every
        align unit the planner costs itself (not to ``costs`` given by the caller)
    score : include the optional score stage (after inference, on the CPU pool)
    preset : the run's model preset; a family whose costs grow with tokens (OpenFold3) reads
        complexes as one target each, its length the token count, and prices inference by
        its own per-token curves (:func:`.costs.with_backend_infer`)

    Raises
    ------
    TargetError : a target fits no node type of the cluster
    InfeasiblePlan : no cluster within the limits meets the deadline or the budget
    """
    lengths = target_lengths(targets, limit, preset)
    stages = ("align", "infer") + (("relax",) if relax else ()) + (("score",) if score else ())
    from ..templates.cost import with_template_search

    if local:
        from .localsim import simulate_local

        spec = cluster if isinstance(cluster, ClusterSpec) else local_cluster(
            **{f"{stage}_workers": n for stage, n in (workers or {}).items()})
        pairing_note = None
        if costs is None:
            from .costs import with_backend_infer
            costs = with_backend_infer(with_template_search(stage_costs(msa_mode), templates),
                                       preset, local=True)
            costs, pairing_note = _with_pairing(costs, targets, limit, preset, lengths, msa_mode)
        result = simulate_local(lengths, spec, costs, stages=stages, memory=memory)
        result.notes += _template_note(costs, lengths) + [pairing_note] * bool(pairing_note)
        result.settings = {"msa_mode": msa_mode, "executor": "local", "workers": spec.workers,
                           "templates": getattr(costs, "template_search", None)}
        return result
    from .costs import REFERENCE, align_curve
    from .levers import cache_hit_targets, describe_levers, index_sizing, lower_bounds, stream_lead
    from ..stages import depends_on
    from .simulate import simulate_cluster

    spec = _cluster(cluster)
    pairing_note = None
    if costs is None:
        costs = (gpu_profile_costs(profile, msa_mode) if profile and profile != REFERENCE
                 and not profile.startswith("reference-") else
                 reference_costs(msa_mode, profile or REFERENCE))
        if msa_mode == "mmseqs2" and mmseqs_sensitivity is not None:
            costs.curves["align"], costs.sources[1] = align_curve(msa_mode,
                                                                  sensitivity=mmseqs_sensitivity)
        with_template_search(costs, templates)   # after the align curve is final
        from .costs import with_backend_infer
        with_backend_infer(costs, preset, local=False)
        costs, pairing_note = _with_pairing(costs, targets, limit, preset, lengths, msa_mode)
    sizing = index_sizing(mmseqs_index_gib if msa_mode == "mmseqs2" else None)
    hits = cache_hit_targets(lengths, msa_cache_hit)
    options = dict(stages=stages, spot=spot, sizing=sizing, cache_hits=hits)

    def simulate(cl, window):
        if window is None:      # streaming; each dependent stage's lead from its inputs' plan
            delay: dict = {}
            for k in range(1, len(stages)):
                if depends_on(stages[k]) in stages[:k]:
                    head = simulate_cluster(lengths, cl, costs, stream=True, stream_delay=delay,
                                            **{**options, "stages": stages[:k]})
                    lead = stream_lead(head, costs.fixed, stages[:k + 1]).get(stages[k])
                    if lead:
                        delay[stages[k]] = lead
            p = simulate_cluster(lengths, cl, costs, stream=True, stream_delay=delay, **options)
            p.settings["stream_delay"] = delay
        else:
            p = simulate_cluster(lengths, cl, costs, batch_window=window, **options)
        p.settings["batch_window"] = window
        return p

    windows = (None,) if batch_window is None else (batch_window,)
    deadline_s = parse_duration(deadline) if deadline is not None else None
    if deadline_s is not None:
        result = smallest_for_deadline(simulate, spec, deadline_s, windows, objective)
        if budget is not None and result.cost > budget:
            raise InfeasiblePlan(f"the {'smallest' if objective == 'nodes' else 'cheapest'} "
                                 f"cluster meeting the deadline costs "
                                 f"${result.cost:,.2f}, over the budget of ${budget:,.2f}", result)
    elif budget is not None:
        result = fastest_for_budget(simulate, spec, budget, windows)
    else:
        result = simulate(spec, windows[0])
    window = result.settings["batch_window"]
    delay = result.settings.get("stream_delay", {})
    result.sources = [s for s in result.sources if s.split(":")[0].split(" ")[0] in stages]
    result.bounds = lower_bounds(result, costs.fixed, stages)
    result.notes += _template_note(costs, lengths) + [pairing_note] * bool(pairing_note)
    result.levers = describe_levers(result, spec, spot, msa_cache_hit, mmseqs_index_gib,
                                    msa_mode)
    result.settings = {
        "msa_mode": msa_mode, "spot": spot, "profile": profile or REFERENCE,
        "templates": getattr(costs, "template_search", None),
        "cluster_source": spec.source, "deadline_s": deadline_s, "budget": budget,
        "executor": "kubernetes", "msa_cache_hit": msa_cache_hit,
        "mmseqs_index_gib": mmseqs_index_gib,
        "executor_options": {
            **({"stream": True, "batch_window": {k: round(v) for k, v in delay.items()}}
               if window is None else {"batch_window": window}),
            "max_shards": _max_shards(result, spec),
            "fixed_cost_s": {s: costs.fixed.pod_start_s + costs.fixed.worker(s) for s in stages}},
        "fixed_costs": {k: v for k, v in vars(costs.fixed).items() if k != "sources"},
        "fixed_cost_sources": costs.fixed.sources}
    return result


def _with_pairing(costs, targets, limit, preset, lengths, msa_mode):
    """The heteromers' UniProt search for pairing in their align units (:mod:`.pairing`)."""
    from .pairing import heteromer_chains, with_pairing_search

    return with_pairing_search(costs, heteromer_chains(targets, limit, preset), lengths,
                               msa_mode)


def _template_note(costs, lengths: dict) -> list[str]:
    """How much of an align unit is template search, at the targets' mean length."""
    route = getattr(costs, "template_search", None)
    if not route:
        return []
    from ..templates.cost import search_seconds_curve

    mean = sum(lengths.values()) / len(lengths)
    search = search_seconds_curve(route)[0](mean)
    return [f"align time includes the template search ({route}): {search:.1f} s of the "
            f"{costs.work('align', mean):.1f} s align unit at the mean length {mean:.0f} "
            "(--no-templates: without it)"]


def _max_shards(result, spec) -> dict:
    """Pods per stage the executor should create at most: what the plan's pools run at once."""
    from .karpenter import _pod_requests

    out: dict[str, int] = {}
    for pool in spec.pools:
        n = result.node_counts.get(pool.name, 0)
        if n:
            out[pool.stage] = out.get(pool.stage, 0) + n * max(
                pool.slots(*_pod_requests(pool.stage, pool.gpu_class)), 1)
    return out


def size_sweep(targets, pool: str = "eksfold-infer", counts=(1, 2, 4, 8, 16), cluster=None,
               **options) -> list[tuple[int, Plan]]:
    """``[(n, Plan)]`` with ``pool`` limited to each of ``counts`` nodes (the other pools as
    described): cost and time vs cluster size. ``options`` go to :func:`plan`."""
    spec = _cluster(cluster)
    if pool not in {p.name for p in spec.pools}:
        raise ConfigError(f"no pool {pool!r} in cluster {spec.name} "
                          f"({', '.join(p.name for p in spec.pools)})")
    return [(n, plan(targets, cluster=spec.scaled(**{pool: n}), **options)) for n in counts]
