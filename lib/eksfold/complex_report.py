"""What a report shows for a complex (a target with several chains or a ligand, issue 24).

Beside the single-chain parts: a 3D view with one colour per chain and ligands as sticks
(:func:`eksfold.views.view_complex`), the chains with their token counts and pTM, the PAE
heatmap cut into chain blocks, a table per chain pair (ipTM as the model reports it, mean PAE
in both directions: low PAE between two chains means the model is confident of their relative
placement), and the interface scores against a reference complex (DockQ, ligand RMSD).

Token counts per chain come from the predicted structure read with gemmi, with OpenFold3's
tokenisation: one token per standard polymer residue, one per heavy atom of a ligand. When
they do not add up to the PAE matrix, the blocks are left out and the report says so.
"""
from __future__ import annotations

import math
import re

import numpy as np

from .report_html import esc, fmt, png


def is_complex(row: dict, metrics: dict | None = None) -> bool:
    chains = (metrics or {}).get("chains", row.get("chains"))
    try:
        return chains is not None and not (isinstance(chains, float) and math.isnan(chains)) \
            and int(chains) > 1
    except (TypeError, ValueError):
        return False


def chain_tokens(structure_text: str) -> list[tuple[str, str, int]]:
    """``(chain id, kind, tokens)`` per chain of a predicted complex, in file order: kind
    ``polymer`` (one token per residue) or ``ligand`` (one per heavy atom)."""
    from .structure_io import load_structure

    st, _ = load_structure(structure_text)
    st.setup_entities()
    out = []
    for chain in st[0]:
        polymer = chain.get_polymer()
        if len(polymer):
            out.append((chain.name, "polymer", len(polymer)))
        ligand_atoms = sum(1 for res in chain.get_ligands() for atom in res
                           if atom.element.name != "H")
        if ligand_atoms:
            out.append((chain.name, "ligand", ligand_atoms))
    return out


def blocks(chains: list[tuple[str, str, int]], size: int) -> list[tuple[str, int, int]] | None:
    """``(chain id, first token, last token + 1)`` per chain, or None when the chains' tokens
    do not add up to ``size``."""
    out, start = [], 0
    for cid, _, n in chains:
        out.append((cid, start, start + n))
        start += n
    return out if start == size else None


def _pair_key(text: str) -> tuple[str, str] | None:
    found = re.findall(r"[A-Za-z0-9]+", str(text))
    return (found[0], found[1]) if len(found) == 2 else None


def pair_rows(pae, spans, chain_pair_iptm: dict | None) -> list[dict]:
    """One row per pair of chains: ipTM (as reported) and the mean PAE each way."""
    iptm = {}
    for key, value in (chain_pair_iptm or {}).items():
        pair = _pair_key(key)
        if pair is not None:
            iptm[pair] = iptm[pair[::-1]] = value
    rows = []
    for i, (a, a0, a1) in enumerate(spans):
        for b, b0, b1 in spans[i + 1:]:
            rows.append({"chains": f"{a}–{b}", "iptm": iptm.get((a, b)),
                         "pae_ab": float(np.mean(pae[a0:a1, b0:b1])),
                         "pae_ba": float(np.mean(pae[b0:b1, a0:a1]))})
    return rows


def _chains_table(chains, chain_ptm: dict | None) -> str:
    ptm = {str(k): v for k, v in (chain_ptm or {}).items()}
    body = "".join(f"<tr><td>{esc(cid)}</td><td>{esc(kind)}</td><td>{n}</td>"
                   f"<td>{fmt(ptm.get(cid), 3)}</td></tr>" for cid, kind, n in chains)
    return ('<table class="eks-small"><thead><tr><th>chain</th><th>kind</th><th>tokens</th>'
            f'<th>pTM</th></tr></thead><tbody>{body}</tbody></table>')


def _pairs_table(rows) -> str:
    body = "".join(f'<tr><td>{esc(r["chains"])}</td><td>{fmt(r["iptm"], 3)}</td>'
                   f'<td>{fmt(r["pae_ab"], 1)}</td><td>{fmt(r["pae_ba"], 1)}</td></tr>'
                   for r in rows)
    return ('<table class="eks-small"><thead><tr><th>chain pair</th><th>ipTM</th>'
            '<th>mean PAE A→B (Å)</th><th>mean PAE B→A (Å)</th></tr></thead>'
            f'<tbody>{body}</tbody></table>')


def interface_line(row: dict) -> str:
    parts = []
    if row.get("iptm") is not None:
        parts.append(f"ipTM {fmt(row.get('iptm'), 3)}")
    if row.get("dockq") is not None:
        parts.append(f"DockQ {fmt(row.get('dockq'), 3)} (lowest interface "
                     f"{fmt(row.get('dockq_min'), 3)})")
    if row.get("ligand_rmsd") is not None:
        parts.append(f"ligand RMSD {fmt(row.get('ligand_rmsd'), 2)} Å after pocket "
                     "superposition")
    if row.get("dockq") is None and row.get("ligand_rmsd") is None:
        parts.append("no reference complex: no interface scores")
    return " · ".join(parts)


def complex_part(row: dict, structure_text: str, pae, metrics: dict, title: str) -> str:
    """The complex's own part of its target section (HTML)."""
    from . import plots

    parts = [f'<p>Interfaces: {esc(interface_line(row))}</p>']
    try:
        chains = chain_tokens(structure_text)
    except Exception as exc:  # noqa: BLE001 - a report must render the rest
        return "".join(parts) + f'<p class="eks-note">Chains not read: {esc(exc)}</p>'
    tables = [_chains_table(chains, metrics.get("chain_ptm"))]
    figure = ""
    if pae is not None:
        spans = blocks(chains, len(pae))
        if spans is None:
            tables.append(f'<p class="eks-note">PAE has {len(pae)} tokens, the chains '
                          f'{sum(n for *_, n in chains)}: chain blocks left out.</p>')
        else:
            tables.append(_pairs_table(pair_rows(np.asarray(pae), spans,
                                                 metrics.get("chain_pair_iptm"))))
            figure = png(plots.plot_pae(pae, title=f"PAE by chain · {title}", blocks=spans))
    parts.append(f'<div class="eks-row"><div>{"".join(tables)}</div><div>{figure}</div></div>')
    return "".join(parts)
