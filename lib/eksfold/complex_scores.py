"""Accuracy of a predicted complex against a reference complex, with the ``DockQ`` package.

DockQ (Mirabello & Wallner; PyPI ``DockQ`` 2.1.3) scores every interface of the reference:
protein-protein (and nucleic acid) pairs by DockQ, fnat, iRMSD and LRMSD; a small molecule
against its receptor by the ligand RMSD after superposing the receptor's pocket (its backbone
within 10 A of the ligand), symmetry-corrected over the ligand's graph isomorphisms. The chain
mapping between model and reference is the one DockQ's own command picks (the highest total
DockQ over mappings of chains with matching sequences), so these figures equal the
``DockQ model reference`` command's (tests compare them).

:func:`score_complex` returns per-interface rows and summary figures: ``dockq`` (DockQ's
GlobalDockQ: the mean over the reference's interfaces), ``dockq_min`` and ``ligand_rmsd``
(the worst, i.e. largest, over ligand interfaces).
"""
from __future__ import annotations

from pathlib import Path

SUMMARY_COLUMNS = ("dockq", "dockq_min", "ligand_rmsd", "interfaces")


def _load(path: Path, small_molecule: bool):
    from DockQ.DockQ import load_PDB

    return load_PDB(str(path), small_molecule=small_molecule)


def _has_ligand(path: Path) -> bool:
    import gemmi

    st = gemmi.read_structure(str(path))
    st.remove_waters()
    return any(len(ch.get_ligands()) for ch in st[0])


def score_complex(model: str | Path, reference: str | Path) -> dict:
    """DockQ of every reference interface; ``{"interfaces": [...], "dockq", ...}``.

    Raises ValueError when the reference has fewer than two chains or no interface.
    """
    try:
        return _score(Path(model), Path(reference))
    except SystemExit as exc:   # DockQ exits on chains it cannot match; name the files instead
        raise ValueError(f"DockQ could not match the chains of {Path(model).name} and "
                         f"{Path(reference).name} (exit {exc.code})") from None


def _score(model: Path, reference: Path) -> dict:
    from DockQ.DockQ import get_all_chain_maps, group_chains, run_on_all_native_interfaces

    small_molecule = _has_ligand(reference)
    model_st = _load(model, small_molecule)
    native_st = _load(reference, small_molecule)
    model_chains = [c.id for c in model_st]
    native_chains = [c.id for c in native_st]
    if len(model_chains) < 2 or len(native_chains) < 2:
        raise ValueError(f"DockQ needs two chains or more (model {model_chains}, reference "
                         f"{native_chains})")
    clusters, reverse = group_chains(model_st, native_st, model_chains, native_chains)
    best, best_total, best_map = None, -1.0, None
    for chain_map in get_all_chain_maps(clusters, {}, reverse, model_chains, native_chains):
        result, total = run_on_all_native_interfaces(model_st, native_st, chain_map=chain_map,
                                                     low_memory=False)
        if total > best_total:
            best, best_total, best_map = result, total, chain_map
    if not best:
        raise ValueError(f"no interface between the reference's chains ({reference.name})")
    rows = []
    for pair, info in best.items():
        ligand = "fnat" not in info   # DockQ's small-molecule rows have LRMSD only
        rows.append({"reference_chains": pair, "model_chains": f"{info['chain1']}{info['chain2']}",
                     "kind": "ligand" if ligand else "polymer",
                     "dockq": round(float(info["DockQ"]), 4),
                     "fnat": None if ligand else round(float(info["fnat"]), 4),
                     "irmsd": None if ligand else round(float(info["iRMSD"]), 3),
                     "lrmsd": round(float(info["LRMSD"]), 3)})
    ligand = [r["lrmsd"] for r in rows if r["kind"] == "ligand"]
    return {"interfaces": rows, "chain_map": best_map,
            "dockq": round(best_total / len(best), 4),
            "dockq_min": min(r["dockq"] for r in rows),
            "ligand_rmsd": max(ligand) if ligand else None}
