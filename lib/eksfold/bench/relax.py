"""Relaxation benchmark: Amber relax time per length on real structures with added noise.

    eksfold bench relax --lengths 50,100,200,300 --profile cpu-2core   # profiles/cpu-2core/relax.*

Inputs are CAMEO reference chains (experimental, so real packing), completed with pdbfixer
(missing heavy atoms added, missing residues left out: chains with gaps in the numbering are
skipped) and perturbed by Gaussian noise, so there are violations and clashes to remove, as in
a model from a network. Untrained-weight predictions cannot be used: they are degenerate.
"""
from __future__ import annotations

import io
import os
from pathlib import Path

from .common import format_table, parse_lengths

DEFAULT_STRUCTURES = ("data/cameo2022/structures", "tests/data/structures")


def complete_chain(path) -> str:
    """A reference chain as OpenFold would write a prediction: all heavy atoms, chain A.

    pdbfixer adds missing heavy atoms (and OXT); residues missing from the model are not
    built, so only gap-free chains give a continuous backbone.
    """
    import pdbfixer
    from openmm import app

    fixer = pdbfixer.PDBFixer(filename=str(path))
    fixer.findMissingResidues()
    fixer.missingResidues = {}
    fixer.findNonstandardResidues()
    fixer.replaceNonstandardResidues()
    fixer.removeHeterogens(keepWater=False)
    fixer.findMissingAtoms()
    fixer.addMissingAtoms(seed=0)
    for chain in fixer.topology.chains():
        chain.id = "A"
    out = io.StringIO()
    app.PDBFile.writeFile(fixer.topology, fixer.positions, out, keepIds=True)
    return out.getvalue()


def perturb(pdb_text: str, noise_a: float = 0.1, seed: int = 0, plddt: float = 80.0) -> str:
    """Heavy-atom coordinates plus N(0, noise_a) Å per axis; B-factors set to ``plddt``."""
    import numpy as np
    from openfold.np import protein

    prot = protein.from_pdb_string(pdb_text)
    rng = np.random.default_rng(seed)
    noise = rng.normal(0.0, noise_a, prot.atom_positions.shape) * prot.atom_mask[..., None]
    noisy = protein.Protein(
        atom_positions=(prot.atom_positions + noise).astype(np.float32), atom_mask=prot.atom_mask,
        aatype=prot.aatype, residue_index=prot.residue_index, chain_index=prot.chain_index,
        b_factors=np.full_like(prot.b_factors, plddt))
    return protein.to_pdb(noisy)


def gap_free_chains(dirs=DEFAULT_STRUCTURES) -> list[tuple[int, Path]]:
    """(length, path) of the single-chain PDB files whose residue numbers have no gaps."""
    import gemmi

    found = []
    for d in dirs:
        for path in sorted(Path(d).glob("*.pdb")):
            chain = gemmi.read_structure(str(path))[0][0]
            nums = [r.seqid.num for r in chain if r.find_atom("CA", "*")]
            if nums and nums == list(range(nums[0], nums[0] + len(nums))):
                found.append((len(nums), path))
    return sorted(found)


def relax_benchmark(lengths, dirs=DEFAULT_STRUCTURES, noise_a: float = 0.1, settings=None,
                    csv=None, log=print):
    """One relaxation per requested length, on the gap-free chain nearest that length.

    A failed relaxation is a row with ``error`` set. ``csv`` is rewritten after every row.
    """
    import pandas as pd

    from ..relaxation import RelaxSettings, relax_structure

    settings = settings or RelaxSettings()
    pool = gap_free_chains(dirs)
    if not pool:
        raise FileNotFoundError(f"no gap-free single-chain PDB files in {', '.join(map(str, dirs))}")
    picked = sorted({min(pool, key=lambda p: abs(p[0] - n)) for n in lengths})
    from ..relaxation import RelaxError

    rows = []
    for length, path in picked:
        load = round(os.getloadavg()[0], 2)  # shared machines: contention inflates the times
        try:
            result = relax_structure(perturb(complete_chain(path), noise_a), settings, path.stem)
            rows.append({"structure": path.stem, **result.metrics, "noise_a": noise_a,
                         "load_1m": load, "error": None})
        except RelaxError as exc:
            rows.append({"structure": path.stem, "length": length, "noise_a": noise_a,
                         "load_1m": load, "error": f"{exc.kind}: {exc.reason}"})
        log(f"L={length:5d} {path.stem}: {rows[-1].get('relax_s')} s minimisation, "
            f"{rows[-1].get('wall_s')} s unit {rows[-1]['error'] or ''}")
        if csv:
            pd.DataFrame(rows).to_csv(csv, index=False)
    return pd.DataFrame(rows)


def plot_relax(df, path) -> None:
    """relax_s and wall_s against length, log-log, with the fitted exponent."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .common import fit_exponent

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for col, label in (("relax_s", "OpenFold relax pipeline"), ("wall_s", "whole call (process start incl.)")):
        k = fit_exponent(df["length"], df[col])
        ax.plot(df["length"], df[col], "o-", label=f"{label}" + (f" ~ L^{k:.2f}" if k else ""))
    load = (f", load {df['load_1m'].min():.0f}-{df['load_1m'].max():.0f}"
            if "load_1m" in df and df["load_1m"].notna().any() else "")
    ax.set(xscale="log", yscale="log", xlabel="residues", ylabel="seconds",
           title=f"Amber relax on {df['platform'].iloc[0]} (OpenMM {df['openmm'].iloc[0]}{load})")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_parser(bsub) -> None:
    r = bsub.add_parser("relax", help="Amber relax time vs length (noisy reference structures)")
    r.add_argument("--lengths", default="50,100,200,300")
    r.add_argument("--structures", action="append", default=None,
                   help="folder of reference PDB files (repeatable); default: the repo's")
    r.add_argument("--noise", type=float, default=0.1, help="Å of Gaussian noise per axis")
    r.add_argument("--platform", default="auto")
    r.add_argument("--threads", type=int, default=None)
    r.add_argument("--profile", help="write profiles/NAME/relax.csv and relax.png")
    r.add_argument("--csv", default=None, help="write the table here (default: the profile's)")
    r.add_argument("--plot", default=None, help="write a PNG plot here (default: the profile's)")
    r.set_defaults(func=_cmd_relax)


def _cmd_relax(args) -> int:
    from ..relaxation import RelaxSettings

    settings = RelaxSettings(platform=args.platform, threads=args.threads)
    if args.profile:
        out = Path(__file__).resolve().parent.parent / "profiles" / args.profile
        out.mkdir(parents=True, exist_ok=True)
        args.csv, args.plot = args.csv or str(out / "relax.csv"), args.plot or str(out / "relax.png")
    df = relax_benchmark(parse_lengths(args.lengths), args.structures or DEFAULT_STRUCTURES,
                         args.noise, settings, args.csv)
    print(f"relax benchmark: OpenFold Amber relax, noise {args.noise} Å, platform {args.platform}")
    print(format_table(df.reindex(columns=[
        "length", "structure", "relax_s", "wall_s", "attempts", "outer_iterations", "energy_before",
        "energy_after", "violations_before", "violations_after", "ca_rmsd_moved", "error"]),
        ["relax_s", "wall_s"]))
    if args.plot and df["error"].isna().any():
        plot_relax(df[df["error"].isna()], args.plot)
    return 0 if df["error"].isna().all() else 1
