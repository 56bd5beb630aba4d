"""A real, small template database built from reference structures (tests and the demo).

From a target set that ships its chains' structures (``data/cameo2022``: ``targets.fasta`` with
each chain's full SEQRES, ``structures/<pdb>.<chain>.pdb``, ``metadata.tsv`` with the release
date, method and resolution) this writes the three template databases in the catalogue's
layout (:mod:`eksfold.data.databases`)::

    <dest>/pdb_mmcif/mmcif_files/<pdb>.cif   gemmi-written mmCIF: SEQRES (_entity_poly_seq),
                                             label_seq_id aligned to it, _exptl.method,
                                             _pdbx_audit_revision_history (release date),
                                             _refine.ls_d_res_high, peptide _chem_comp types
    <dest>/pdb_mmcif/obsolete.dat            the PDB's obsolete-entry list format (no entries)
    <dest>/pdb_mmcif/release_dates.json      OpenFold's --release_dates_path format
                                             ({"7sao": {"release_date": "2022-08-03"}})
    <dest>/pdb_seqres/pdb_seqres.txt         ``>7sao_A mol:protein length:38  <name>`` + SEQRES
    <dest>/pdb70/pdb70_{a3m,hhm,cs219}.ff{data,index}
                                             one single-sequence A3M per chain, profiled with
                                             hhmake, cs219 with cstranslate (HH-suite's recipe)

The release dates are the entries' real ones (CAMEO releases a target's structure days after
its submission date), so a cut-off at a target's submission date excludes its own structure,
as in CAMEO's blind setting. Everything is built in a scratch folder and moved in last; a
complete database is not rebuilt (``.done``).
"""
from __future__ import annotations

import csv
import json
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

DONE = ".done"
OBSOLETE_HEADER = " LIST OF OBSOLETE COORDINATE ENTRIES AND SUCCESSORS\n"


@dataclass(frozen=True)
class Chain:
    pdb_id: str          # lower case, 4 characters
    chain: str
    seqres: str
    structure: Path
    release_date: str    # YYYY-MM-DD
    method: str
    resolution: float | None
    name: str            # a description for pdb_seqres / PDB70 headers

    @property
    def hit_name(self) -> str:
        return f"{self.pdb_id}_{self.chain}"

    def header(self) -> str:
        return f"{self.hit_name} mol:protein length:{len(self.seqres)}  {self.name}"


def read_chains(target_set: str | os.PathLike) -> list[Chain]:
    """The chains of a target set folder that have a structure file and metadata."""
    from ..target_files import read_fasta

    base = Path(target_set)
    meta = {}
    with open(base / "metadata.tsv", newline="") as fh:
        for row in csv.DictReader(fh, delimiter="\t"):
            meta[row["name"]] = row
    chains = []
    for target in read_fasta(base / "targets.fasta"):
        key = f"{target.pdb_id}.{target.chain}"
        path = base / "structures" / f"{key}.pdb"
        if not (target.pdb_id and path.is_file() and key in meta):
            continue
        row = meta[key]
        chains.append(Chain(target.pdb_id, target.chain, target.sequence, path,
                            row["release_date"], row["method"],
                            float(row["resolution"]) if row.get("resolution") else None,
                            f"CAMEO target {row.get('cameo_target_id', key)}"))
    if not chains:
        raise ConfigError(f"{base}: no chains with a structure and metadata to build templates")
    return chains


def write_mmcif(chain: Chain, path: Path) -> None:
    """One entry as mmCIF with what OpenFold's ``mmcif_parsing.parse`` reads."""
    import gemmi

    st = gemmi.read_structure(str(chain.structure))
    st.name = chain.pdb_id
    st.remove_ligands_and_waters()
    st.setup_entities()
    polymers = [e for e in st.entities if e.entity_type == gemmi.EntityType.Polymer]
    if len(polymers) != 1:
        raise ConfigError(f"{chain.structure}: expected one polymer chain")
    entity = polymers[0]
    entity.name = "1"
    entity.full_sequence = gemmi.expand_one_letter_sequence(chain.seqres, gemmi.ResidueKind.AA)
    for res in st[0][chain.chain] if len(st) else []:
        res.subchain = chain.chain                # label_asym_id = author chain, as one-chain entries
    entity.subchains = [chain.chain]
    st.assign_label_seq_id(True)                 # observed residues aligned to SEQRES
    doc = st.make_mmcif_document()
    block = doc.sole_block()
    block.name = chain.pdb_id.upper()
    block.set_pair("_entry.id", chain.pdb_id.upper())
    # the canonical one-letter SEQRES, as every PDB entry has it: OpenFold3's template
    # pipeline matches hits to chains by it (get_asym_id_to_canonical_seq_dict)
    poly = block.find_mmcif_category("_entity_poly.")
    if "_entity_poly.pdbx_seq_one_letter_code_can" not in poly.tags:
        columns = {tag.split(".", 1)[1]: [poly[0][i]] for i, tag in enumerate(poly.tags)}
        columns["pdbx_seq_one_letter_code_can"] = [chain.seqres]
        block.set_mmcif_category("_entity_poly.", columns, raw=True)
    _poly_seq_scheme(block, st, chain, entity.full_sequence)
    comps = block.find_mmcif_category("_chem_comp.")
    for row in comps:
        row[1] = gemmi.cif.quote("L-peptide linking")   # OpenFold keeps chains of "peptide" types
    block.set_mmcif_category("_exptl.", {"entry_id": [chain.pdb_id.upper()],
                                         "method": [chain.method.upper()]})
    block.set_mmcif_category("_pdbx_audit_revision_history.", {
        "ordinal": ["1"], "data_content_type": ["Structure model"], "major_revision": ["1"],
        "minor_revision": ["0"], "revision_date": [chain.release_date]})
    if chain.resolution is not None:
        block.set_pair("_refine.ls_d_res_high", str(chain.resolution))
    path.write_text(doc.as_string())


def _poly_seq_scheme(block, st, chain: Chain, full_sequence) -> None:
    """``_pdbx_poly_seq_scheme`` (every PDB entry has it; gemmi does not write it): SEQRES
    position -> observed residue. OpenFold3 maps label chains to entities through it."""
    observed = {res.label_seq: res for res in st[0][chain.chain]} if len(st) else {}
    rows = {k: [] for k in ("asym_id", "entity_id", "seq_id", "mon_id", "ndb_seq_num",
                            "pdb_seq_num", "auth_seq_num", "pdb_mon_id", "auth_mon_id",
                            "pdb_strand_id", "pdb_ins_code", "hetero")}
    for i, mon in enumerate(full_sequence, start=1):
        res = observed.get(i)
        num = str(res.seqid.num) if res else str(i)
        icode = res.seqid.icode.strip() if res else ""
        for key, value in (("asym_id", chain.chain), ("entity_id", "1"), ("seq_id", str(i)),
                           ("mon_id", mon), ("ndb_seq_num", str(i)), ("pdb_seq_num", num),
                           ("auth_seq_num", num if res else "?"),
                           ("pdb_mon_id", mon if res else "?"),
                           ("auth_mon_id", mon if res else "?"), ("pdb_strand_id", chain.chain),
                           ("pdb_ins_code", icode or "."), ("hetero", "n")):
            rows[key].append(value)
    block.set_mmcif_category("_pdbx_poly_seq_scheme.", rows, raw=True)


def _run(tool: str, argv: list[str], cwd: Path | None = None, stdin: bytes | None = None) -> None:
    import subprocess

    if shutil.which(argv[0]) is None and not Path(argv[0]).is_file():
        raise ConfigError(f"{argv[0]} not found: install HH-suite (make setup)")
    proc = subprocess.run(argv, cwd=cwd, input=stdin, capture_output=True)
    if proc.returncode:
        from ..errors import ToolError
        raise ToolError(tool, proc.returncode, proc.stderr.decode(errors="replace")[-2000:])


def cstranslate_binary() -> str:
    """Debian's ``cstranslate`` wrapper is broken (FACTS): the build for this CPU directly."""
    flags = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    for isa in ("avx2", "sse3"):
        candidate = Path(f"/usr/libexec/hhsuite/cstranslate-{isa}")
        if isa in flags.split() and candidate.is_file():
            return str(candidate)
    return "/usr/libexec/hhsuite/cstranslate-plain"


def build_pdb70(chains: list[Chain], prefix: Path) -> None:
    """A PDB70-style HH-suite database: single-sequence A3M -> hhmake -> cstranslate (cs219)."""
    work = prefix.parent
    a3m = work / "a3m"
    a3m.mkdir()
    for c in chains:
        (a3m / c.hit_name).write_text(f">{c.header()}\n{c.seqres}\n")
    hhm = work / "hhm"
    hhm.mkdir()
    for c in chains:
        _run("hhmake", ["hhmake", "-i", str(a3m / c.hit_name), "-o", str(hhm / c.hit_name),
                        "-v", "0"])
    for kind, folder in (("a3m", a3m), ("hhm", hhm)):
        _run("ffindex_build", ["ffindex_build", "-s", f"{prefix}_{kind}.ffdata",
                               f"{prefix}_{kind}.ffindex", str(folder)])
    _run("cstranslate", [cstranslate_binary(), "-f", "-x", "0.3", "-c", "4", "-I", "a3m", "-b",
                         "-i", f"{prefix}_a3m", "-o", f"{prefix}_cs219",
                         "-A", "/usr/share/hhsuite/data/cs219.lib",
                         "-D", "/usr/share/hhsuite/data/context_data.lib"])
    shutil.rmtree(a3m)
    shutil.rmtree(hhm)


def build(target_set, dest: str | os.PathLike) -> Path:
    """Build the stand-in template databases under ``dest`` (skipped when complete) from one
    target set folder or several (a chain in two sets is taken once)."""
    dest = Path(dest)
    if (dest / DONE).is_file():
        return dest
    sets = [target_set] if isinstance(target_set, (str, os.PathLike)) else list(target_set)
    chains = list({(c.pdb_id, c.chain): c for s in sets for c in read_chains(s)}.values())
    dest.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".build-", dir=dest.parent) as tmp:
        tmp = Path(tmp)
        cifs = tmp / "pdb_mmcif" / "mmcif_files"
        cifs.mkdir(parents=True)
        for c in chains:
            write_mmcif(c, cifs / f"{c.pdb_id}.cif")
        (tmp / "pdb_mmcif" / "obsolete.dat").write_text(OBSOLETE_HEADER)
        (tmp / "pdb_mmcif" / "release_dates.json").write_text(json.dumps(
            {c.pdb_id: {"release_date": c.release_date} for c in chains}, indent=1))
        (tmp / "pdb_seqres").mkdir()
        (tmp / "pdb_seqres" / "pdb_seqres.txt").write_text(
            "".join(f">{c.header()}\n{c.seqres}\n" for c in chains))
        (tmp / "pdb70").mkdir()
        build_pdb70(chains, tmp / "pdb70" / "pdb70")
        if dest.exists():
            shutil.rmtree(dest)
        tmp.chmod(0o755)                # a scratch folder is private; the database is not
        os.replace(tmp, dest)
        tmp.mkdir()      # TemporaryDirectory removes its (now empty) folder on exit
    (dest / DONE).write_text(f"{len(chains)} chains from {', '.join(map(str, sets))}\n")
    return dest


def paths(root: str | os.PathLike) -> dict[str, str]:
    """The :class:`eksfold.config.DatabaseConfig` fields of a template database root."""
    root = Path(root)
    return {"pdb70": str(root / "pdb70" / "pdb70"),
            "pdb_seqres": str(root / "pdb_seqres" / "pdb_seqres.txt"),
            "template_mmcif_dir": str(root / "pdb_mmcif" / "mmcif_files"),
            "obsolete_pdbs": str(root / "pdb_mmcif" / "obsolete.dat")}


def release_dates_path(root: str | os.PathLike) -> str:
    """OpenFold's release-dates file of a stand-in root (``TemplateConfig.release_dates``)."""
    return str(Path(root) / "pdb_mmcif" / "release_dates.json")


if __name__ == "__main__":   # python -m eksfold.templates.standin TARGET_SET [TARGET_SET...] DEST
    out = build(sys.argv[1:-1], sys.argv[-1])
    print(f"{out}: {len(list((out / 'pdb_mmcif' / 'mmcif_files').glob('*.cif')))} template "
          "entries (mmCIF, pdb_seqres, pdb70)")
