"""The ``align`` stage: MSAs for one target, written as the folder OpenFold's data pipeline reads.

Mode ``jackhmmer`` (the default) searches every configured database (jackhmmer for FASTA
databases, hhblits for HH-suite ones); mode ``mmseqs2`` searches an MMseqs2 database (plain or
ColabFold layout), a whole shard of queries in one invocation (:meth:`AlignStage.prepare_batch`).
OpenFold's precomputed alignments of the target's PDB chain are used instead when asked for and
their query row is the target's sequence; with an MSA cache (``AlignConfig.cache``) an
alignment computed before for the same sequence, mode and database is reused.

Metrics: ``tools`` (one entry per program: wall/CPU seconds, peak RSS, output file),
``tool_wall_s``, ``cpu_s``, ``tool_peak_rss_mb``, ``msa_depth``, ``databases``, ``precomputed``;
with templates (:mod:`eksfold.templates.search`) ``template_hits``, ``template_search_wall_s``,
``template_search_cpu_s``, ``template_tools`` and the hit file (``pdb70_hits.hhr`` or
``hmm_output.sto``) beside the MSAs.

Complexes (:meth:`AlignStage._complex`): each distinct protein chain aligned once into
``chain_<id>/``; for a family that pairs MSAs (OpenFold3) and a heteromer, also a search of
the ``uniprot`` database: jackhmmer into ``chain_<id>/uniprot_hits.sto``, or in MMseqs2 mode
MMseqs2 into ``chain_<id>/uniprot_hits.a3m`` (:mod:`eksfold.alignment.uniprot_mmseqs`); cached
per chain sequence under its own key (:mod:`eksfold.alignment.pairing`). Metrics ``pairing``
(paired or why not), ``uniprot_hits`` (hits per chain, query not counted) and per chain
``uniprot_cache_hit`` (and ``uniprot_dropped_rows``: MMseqs2 hits without a UniProt name).
RNA chains of a family that reads RNA MSAs (OpenFold3): nhmmer against the ``rfam`` database
into ``chain_<id>/rfam_hits.a3m`` (:mod:`eksfold.alignment.rna`); per chain ``rfam_hits``,
``rfam_rows`` (with the query) and ``rfam_cache_hit``, and ``rna_msas`` (searched or why not).
"""
from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from ..alignment.hhsuite import HHblits
from ..alignment.hmmer import Jackhmmer
from ..alignment.msa import check_alignments, msa_depth
from ..alignment.tools import tool_version
from ..errors import ConfigError, StorageError, TargetError
from ..targets import Target
from .base import Resources, Stage


class AlignStage(Stage):
    name = "align"
    title = "alignment"
    pool = "cpu"
    summary_columns = {"align_wall_s": "wall_s", "align_cpu_s": "cpu_s",
                       "align_peak_rss_mb": "tool_peak_rss_mb", "msa_depth": "msa_depth",
                       "msa_mode": "mode", "template_hits": "template_hits",
                       "template_search_s": "template_search_wall_s"}   # templates (#20)

    fixed_cost_s = 5.0

    def predicted_seconds(self, length: int) -> float:
        # jackhmmer on the 20,000-sequence database: ~0.1 s; real databases scale with their size
        seconds = 0.2 + 0.0005 * length
        route = getattr(getattr(self, "templates", None), "route", None)   # after open()
        if route:   # the template search follows the MSA in the same unit: measured (#20)
            from ..templates.cost import search_seconds_curve

            seconds += search_seconds_curve(route)[0](length)
        return seconds

    def resources(self, length: int) -> Resources:
        # jackhmmer's memory grows with query length and database chunking
        return Resources("cpu", cpu=self.config.align.cpus, memory_gb=16 if length <= 1000 else 32)

    def open(self) -> None:
        """Check the databases once per worker, not once per target."""
        dbs, cfg = self.config.databases, self.config.align
        self.tools = []
        if dbs.uniref90:
            self.tools.append(Jackhmmer(dbs.uniref90, cfg.cpus, cfg.jackhmmer_iterations,
                                        cfg.evalue, cfg.uniref90_max_hits))
        for field_, max_hits in (("mgnify", cfg.mgnify_max_hits),
                                 ("small_bfd", cfg.uniref90_max_hits)):
            if getattr(dbs, field_):
                tool = Jackhmmer(getattr(dbs, field_), cfg.cpus, cfg.jackhmmer_iterations,
                                 cfg.evalue, max_hits)
                tool.output_name = f"{field_}_hits.sto"
                self.tools.append(tool)
        if dbs.bfd:
            prefixes = [dbs.bfd] + ([dbs.uniclust30] if dbs.uniclust30 else [])
            self.tools.append(HHblits(prefixes, cfg.cpus, cfg.hhblits_iterations))
        self.mmseqs, self._batch = None, {}
        if cfg.msa_mode == "mmseqs2":
            self.tools = []          # one mode per run: the manifest says which
            self.mmseqs = _mmseqs_search(cfg)
        elif cfg.msa_mode != "jackhmmer":
            raise ConfigError(f"unknown MSA mode {cfg.msa_mode!r}: jackhmmer or mmseqs2")
        # versions from where the unit runs (a Pod's image), not from the driver's machine
        self.versions = {tool.name: tool_version([tool.binary, "-h"]) for tool in self.tools}
        if self.mmseqs:
            self.versions["mmseqs"] = tool_version(["mmseqs", "version"])
        from ..templates.search import for_run   # template search (#20): None without templates
        self.templates = for_run(self.config)
        if self.templates:
            self.versions.update(self.templates.versions())
        self._open_pairing(cfg)
        self._open_rna(cfg)
        self.cache = _cache(cfg, self) if cfg.cache else None
        self._check_databases()
        if not self.tools and not self.mmseqs and not cfg.use_precomputed:
            raise ConfigError("no sequence database configured for the alignment stage: pass "
                              "--uniref90 FASTA, set $EKSFOLD_DATABASE, or run `make setup` "
                              "to build the default one")

    def _open_pairing(self, cfg) -> None:
        """The UniProt search for species pairing, when the run pairs (alignment.pairing):
        jackhmmer of the FASTA, or in MMseqs2 mode MMseqs2 of its MMseqs2 database."""
        from ..alignment.pairing import UNIPROT_HITS, plan

        self.pairing = plan(self.config)
        self.uniprot = None
        if self.pairing.active and cfg.msa_mode == "mmseqs2":
            from ..alignment.uniprot_mmseqs import UniProtMMseqs2

            # one pass, like AlphaFold-Multimer's jackhmmer over UniProt; ColabFold's -s
            self.uniprot = UniProtMMseqs2(database=self.pairing.database,
                                          sensitivity=cfg.mmseqs_sensitivity,
                                          max_seqs=cfg.uniprot_max_hits, cpus=cfg.cpus)
        elif self.pairing.active:
            self.uniprot = Jackhmmer(self.pairing.database, cfg.cpus,
                                     cfg.jackhmmer_iterations, cfg.evalue, cfg.uniprot_max_hits)
            self.uniprot.output_name = UNIPROT_HITS
            self.versions.setdefault("jackhmmer", tool_version(["jackhmmer", "-h"]))

    def _open_rna(self, cfg) -> None:
        """nhmmer of RNA chains against the rfam database, when the family reads RNA MSAs
        (:mod:`eksfold.alignment.rna`)."""
        from ..alignment.rna import plan

        self.rna = plan(self.config)
        self.nhmmer = None
        if self.rna.active:
            from ..alignment.nhmmer import Nhmmer

            self.nhmmer = Nhmmer(self.rna.database, cfg.cpus)
            self.versions.setdefault("nhmmer", tool_version(["nhmmer", "-h"]))

    def _check_databases(self) -> None:
        """A truncated database fails each unit with a clear, retryable error (exit 1): the
        tools would search the part that is left, silently (:mod:`eksfold.alignment.dbcheck`)."""
        from ..alignment.dbcheck import check_database

        run = getattr(self, "run", None)
        try:
            recorded = run.manifest.get("databases", {}) if run is not None else {}
        except (FileNotFoundError, ValueError, AttributeError):
            recorded = {}
        paths = ({"mmseqs": self.mmseqs.database} if self.mmseqs
                 else self.config.databases.configured())
        if self.mmseqs and self.uniprot:   # pairing's MMseqs2 database (not the manifest's FASTA)
            paths["uniprot_mmseqs"] = self.uniprot.database
        for name, path in paths.items():
            problem = check_database(path, recorded.get(name))
            if problem:
                raise StorageError(path, f"the {name} sequence database looks truncated: "
                                         f"{problem}", "download or rebuild it (`make setup`), "
                                   "then run the same command again", retryable=True)

    @classmethod
    def batch_units(cls, config) -> int:
        align = config.align
        return max(1, align.mmseqs_batch) if align.msa_mode == "mmseqs2" else 1

    def prepare_batch(self, targets: list[Target], scratch: Path) -> None:
        """MMseqs2 mode: search every target of a shard at once (cache hits left out)."""
        self._batch = {}              # results of an earlier batch are gone with its scratch
        if not self.mmseqs:
            return
        todo = {t.id: t.sequence for t in targets if t.complex is None   # complexes: per chain
                and not (self.cache and self.cache.entry(t.sequence, "mmseqs2", self.db_identity))}
        if len(todo) > 1:
            dirs = {tid: scratch / "batch" / tid for tid in todo}
            results = self.mmseqs.search(todo, dirs, work=scratch)
            self._batch = {tid: (dirs[tid], result) for tid, result in results.items()}

    def run_unit(self, target: Target, inputs, out: Path) -> dict:
        out.mkdir(parents=True, exist_ok=True)
        if target.complex is not None:
            return self._complex(target, inputs, out)
        if self.config.align.use_precomputed:
            reused = self._precomputed(target, out)
            if reused is not None:
                return self._templates(target, out, reused)
        mode = self.config.align.msa_mode
        if self.cache:
            started = time.perf_counter()
            if self.cache.get(target.sequence, mode, self.db_identity, out):
                return self._templates(target, out, {
                    "mode": mode, "cache_hit": True, "msa_depth": msa_depth(out),
                    "tool_wall_s": round(time.perf_counter() - started, 3), "cpu_s": 0.0,
                    "tool_peak_rss_mb": 0.0, "tools": [], "versions": self.versions})
        metrics = self._mmseqs(target, out) if self.mmseqs else self._jackhmmer(target, out)
        metrics = self._templates(target, out, metrics)   # before caching: hits go with MSAs
        if self.cache:
            self.cache.put(target.sequence, mode, self.db_identity, out)
        return {**metrics, "mode": mode, "cache_hit": False}

    def _complex(self, target: Target, inputs, out: Path) -> dict:
        """A complex: each distinct protein chain (entity) aligned once, into
        ``chain_<first id>/`` (the MSA cache applies per chain; a run's template search runs
        there too, its hits cached with the MSAs); DNA and ligands need no MSA. A
        heteromer of a pairing family also gets each chain's UniProt hits
        (``uniprot_hits.sto``). Metrics: the tools' sums, per chain depth and cache hits, and
        ``pairing``: whether its MSAs can be paired and, if not, why. Each distinct RNA chain
        of a family that reads RNA MSAs (OpenFold3): nhmmer against the rfam database into
        ``chain_<id>/rfam_hits.a3m`` (cached per chain sequence), or, with no rfam database,
        none and ``rna_msas`` says why."""
        from ..alignment.pairing import (UNIPROT_HITS, UNIPROT_HITS_A3M, protein_entities,
                                         skip_reason)
        from ..models.openfold3.folder import chain_dir

        skip = self.pairing.reason if self.pairing.wanted else None
        skip = skip or (skip_reason(target.complex) if self.pairing.active else None)
        search_uniprot = self.pairing.active and skip is None
        per_chain, uniprot = {}, {}
        for chain in protein_entities(target.complex):
            sub = Target(f"{target.id}-{chain['chain_ids'][0].lower()}", chain["sequence"])
            folder = out / chain_dir(chain["chain_ids"])
            for name in (UNIPROT_HITS, UNIPROT_HITS_A3M):   # never cached with the MSAs
                (folder / name).unlink(missing_ok=True)
            key = ",".join(chain["chain_ids"])
            per_chain[key] = self.run_unit(sub, inputs, folder)
            if search_uniprot:
                uniprot[key] = self._uniprot(sub, folder)
        rna = self._rna_chains(target, out)
        runs = [*per_chain.values(), *uniprot.values(), *rna.values()]
        chains = {k: {"msa_depth": m.get("msa_depth"), "cache_hit": m.get("cache_hit"),
                      "tool_wall_s": m.get("tool_wall_s"),
                      **({"template_hits": m["template_hits"]} if "template_hits" in m else {})}
                  for k, m in per_chain.items()}
        for k, m in uniprot.items():
            chains[k].update(uniprot_hits=m["hits"], uniprot_cache_hit=m["cache_hit"])
            if m.get("dropped_rows"):   # MMseqs2 hits without a UniProt name: not pairable
                chains[k]["uniprot_dropped_rows"] = m["dropped_rows"]
        for k, m in rna.items():
            chains[k] = {"molecule_type": "rna", "rfam_hits": m["hits"],
                         "rfam_rows": m["hits"] + 1, "rfam_cache_hit": m["cache_hit"],
                         "tool_wall_s": m["tool_wall_s"]}
        rna_entities = [c for c in target.complex["chains"] if c["molecule_type"] == "rna"]
        rna_msas = (None if not (self.rna.wanted and rna_entities) else
                    {"searched": True, "source": "rfam", "database": self.rna.database,
                     "chains": len(rna)} if self.rna.active else
                    {"searched": False, "reason": self.rna.reason})
        pairing = ({"paired": True, "source": "uniprot", "database": self.uniprot.database,
                    "chains": len(uniprot)} if search_uniprot
                   else {"paired": False, "reason": skip} if self.pairing.wanted else None)
        return {"mode": self.config.align.msa_mode, "chains": chains,
                "aligned_chains": len(per_chain),
                "cache_hits": sum(bool(m.get("cache_hit")) for m in per_chain.values()),
                "tool_wall_s": round(sum(m.get("tool_wall_s") or 0 for m in runs), 3),
                "cpu_s": round(sum(m.get("cpu_s") or 0 for m in runs), 3),
                "tool_peak_rss_mb": max((m.get("tool_peak_rss_mb") or 0 for m in runs),
                                        default=0.0),
                "msa_depth": min((m.get("msa_depth") or 0 for m in per_chain.values()),
                                 default=0),
                **({"pairing": pairing} if pairing else {}),
                **({"rna_msas": rna_msas} if rna_msas else {}),
                # templates (hits per chain above): the sum, the summary's template_hits
                **({"template_hits": sum(m["template_hits"] for m in per_chain.values()
                                         if "template_hits" in m)}
                   if any("template_hits" in m for m in per_chain.values()) else {}),
                **({"uniprot_hits": {k: m["hits"] for k, m in uniprot.items()}}
                   if uniprot else {}),
                "versions": self.versions}

    def _uniprot(self, target: Target, out: Path) -> dict:
        """One chain's UniProt hits: jackhmmer into ``out/uniprot_hits.sto`` or MMseqs2 into
        ``out/uniprot_hits.a3m``, or the cached hits of the same sequence (key: sequence, the
        cache mode ``uniprot`` / ``uniprot-mmseqs2``, that database and the search settings)."""
        from ..alignment.msa import read_msa_sequences
        from ..alignment.pairing import UNIPROT_HITS_A3M

        mmseqs = self.config.align.msa_mode == "mmseqs2"
        name, mode = ((UNIPROT_HITS_A3M, "uniprot-mmseqs2") if mmseqs
                      else (self.uniprot.output_name, "uniprot"))
        started = time.perf_counter()
        if self.cache and self.cache.get(target.sequence, mode, self.uniprot_identity, out):
            return {"cache_hit": True, "hits": len(read_msa_sequences(out / name)) - 1,
                    "tool_wall_s": round(time.perf_counter() - started, 3), "cpu_s": 0.0,
                    "tool_peak_rss_mb": 0.0}
        if mmseqs:
            result = self.uniprot.search({target.id: target.sequence}, {target.id: out},
                                         work=out.parent)[target.id]
            if result["status"] != "ok":
                raise TargetError(target.id, f"UniProt search for pairing: {result['error']}")
            run = {"tool_wall_s": result["wall_s"], "cpu_s": result["cpu_s"],
                   "tool_peak_rss_mb": result["tool_peak_rss_mb"],
                   "dropped_rows": result["dropped_rows"]}
        else:
            query = out.parent / f".{target.id}.uniprot.fasta"
            query.write_text(target.fasta())
            try:
                done = self.uniprot.run(query, out / name)
            finally:
                query.unlink(missing_ok=True)
            run = {"tool_wall_s": done.wall_s, "cpu_s": done.cpu_s,
                   "tool_peak_rss_mb": done.peak_rss_mb}
        if self.cache:
            self.cache.put(target.sequence, mode, self.uniprot_identity, out, names=[name])
        return {"cache_hit": False, "hits": len(read_msa_sequences(out / name)) - 1, **run}

    def _rna_chains(self, target: Target, out: Path) -> dict:
        """Each distinct RNA chain's rfam hits (nhmmer), by its chain ids; {} without a
        database. The hits' rows and cache hit go beside them (``rna_msa.json``) for the
        infer record."""
        from ..alignment.rna import rna_entities, write_record
        from ..models.openfold3.folder import chain_dir

        if not self.nhmmer:
            return {}
        done = {}
        for chain in rna_entities(target.complex):
            folder = out / chain_dir(chain["chain_ids"])
            folder.mkdir(parents=True, exist_ok=True)
            sub = f"{target.id}-{chain['chain_ids'][0].lower()}"
            result = self._rfam(sub, chain["sequence"], folder)
            write_record(folder, {"rows": result["hits"] + 1, "hits": result["hits"],
                                  "cache_hit": result["cache_hit"],
                                  "database": self.rna.database})
            done[",".join(chain["chain_ids"])] = result
        return done

    def _rfam(self, name: str, sequence: str, out: Path) -> dict:
        """One RNA chain: nhmmer into ``out/rfam_hits.a3m``, or the cached hits of the same
        sequence (key: sequence, mode ``rfam-nhmmer``, the database and the settings)."""
        from ..alignment.nhmmer import RFAM_HITS, a3m_rows
        from ..alignment.rna import MODE

        started = time.perf_counter()
        if self.cache and self.cache.get(sequence, MODE, self.rna_identity, out):
            return {"cache_hit": True, "hits": a3m_rows(out / RFAM_HITS) - 1,
                    "tool_wall_s": round(time.perf_counter() - started, 3), "cpu_s": 0.0,
                    "tool_peak_rss_mb": 0.0}
        query = out.parent / f".{name}.rna.fasta"
        query.write_text(f">{name}\n{sequence}\n")
        try:
            done = self.nhmmer.run(query, out / RFAM_HITS)
        finally:
            query.unlink(missing_ok=True)
        if self.cache:
            self.cache.put(sequence, MODE, self.rna_identity, out, names=[RFAM_HITS])
        return {"cache_hit": False, "hits": a3m_rows(out / RFAM_HITS) - 1,
                "tool_wall_s": done.wall_s, "cpu_s": done.cpu_s,
                "tool_peak_rss_mb": done.peak_rss_mb}

    def _templates(self, target: Target, out: Path, metrics: dict) -> dict:
        """Template search after the MSAs (eksfold.templates.search); nothing without one."""
        return {**metrics, **self.templates.run(target, out)} if self.templates else metrics

    def _mmseqs(self, target: Target, out: Path) -> dict:
        if target.id in self._batch:          # searched with its shard
            folder, result = self._batch.pop(target.id)
        else:
            folder = out.parent / f".{target.id}.mmseqs"
            result = self.mmseqs.search({target.id: target.sequence}, {target.id: folder},
                                        work=out.parent)[target.id]
        if result["status"] != "ok":
            raise TargetError(target.id, result["error"])
        for name in result["outputs"]:
            (folder / name).replace(out / name)
        return {**{k: v for k, v in result.items() if k not in ("status", "error")},
                "tool_wall_s": result.get("wall_s"), "cpu_s": result.get("cpu_s"),
                "msa_depth": msa_depth(out), "versions": self.versions}

    def _jackhmmer(self, target: Target, out: Path) -> dict:
        if not self.tools:
            raise TargetError(target.id, "no precomputed alignments for this chain, and no "
                                         "sequence database is configured")
        query = out.parent / f".{target.id}.query.fasta"
        query.write_text(target.fasta())
        try:
            runs = [asdict(tool.run(query, out / tool.output_name)) | {"output": tool.output_name}
                    for tool in self.tools]
        finally:
            query.unlink(missing_ok=True)
        return {
            "tools": runs,
            "tool_wall_s": round(sum(r["wall_s"] for r in runs), 3),
            "cpu_s": round(sum(r["cpu_s"] for r in runs), 3),
            "tool_peak_rss_mb": max(r["peak_rss_mb"] for r in runs),
            "msa_depth": msa_depth(out),
            "databases": self.config.databases.configured(),
            "versions": self.versions,
        }

    def _precomputed(self, target: Target, out: Path) -> dict | None:
        """Metrics for OpenFold's precomputed alignments of the target's chain, or None."""
        if not (target.pdb_id and target.chain):
            return None
        from ..data.alignments import fetch_alignments

        started = time.perf_counter()
        if fetch_alignments(target.pdb_id, target.chain, out,
                            source=self.config.align.precomputed_source, progress=False) is None:
            return None
        try:
            check_alignments(target, out)
        except TargetError:
            # the chain's SEQRES differs from the target sequence: align from scratch instead
            for path in list(out.iterdir()):
                path.unlink()
            return None
        return {"tools": [], "precomputed": f"{target.pdb_id}_{target.chain}",
                "tool_wall_s": round(time.perf_counter() - started, 3), "cpu_s": 0.0,
                "tool_peak_rss_mb": 0.0, "msa_depth": msa_depth(out), "databases": {}}


def _mmseqs_search(cfg):
    from ..alignment.mmseqs import MMseqs2Search
    from ..site import default_mmseqs_db

    database = cfg.mmseqs_db or default_mmseqs_db(cfg.mmseqs_layout)
    if not database:
        raise ConfigError("MSA mode mmseqs2 needs an MMseqs2 database: pass --mmseqs-db PREFIX "
                          "(make test-setup builds small ones under data/db/mmseqs)")
    return MMseqs2Search(database=database, layout=cfg.mmseqs_layout,
                         sensitivity=cfg.mmseqs_sensitivity, iterations=cfg.mmseqs_iterations,
                         max_seqs=cfg.mmseqs_max_seqs, cpus=cfg.cpus)


# DatabaseConfig fields that hold template databases, not sequence databases for the MSAs
TEMPLATE_FIELDS = ("pdb70", "pdb_seqres", "template_mmcif_dir", "obsolete_pdbs")
# ... and the UniProt hits for pairing, cached under their own key (mode "uniprot")
NOT_IN_MSA_KEY = (*TEMPLATE_FIELDS, "uniprot", "rfam")   # rfam: RNA chains' own key


def _cache(cfg, stage: AlignStage):
    """The MSA cache and the identity of the databases its entries are keyed by."""
    from ..alignment.cache import MSACache, database_identity
    from ..templates.search import identity_files

    dbs = {k: v for k, v in stage.config.databases.configured().items()
           if k not in NOT_IN_MSA_KEY}
    paths = [stage.mmseqs.database] if stage.mmseqs else list(dbs.values())
    extra = stage.mmseqs.settings() if stage.mmseqs else {}
    if stage.templates:   # the template hits are cached with the MSAs (#20)
        paths += identity_files(stage.templates.route, stage.config.databases)
        extra["templates"] = stage.templates.route
    stage.db_identity = database_identity(*paths, **extra)
    if stage.uniprot:   # the pairing hits: that database and the search settings
        tool = stage.uniprot
        stage.uniprot_identity = (
            database_identity(tool.database, search="mmseqs2", **tool.settings())
            if cfg.msa_mode == "mmseqs2" else
            database_identity(tool.database, search="jackhmmer", iterations=tool.iterations,
                              evalue=tool.evalue, max_hits=tool.max_hits))
    if stage.nhmmer:   # RNA chains' hits: that database and nhmmer's settings
        stage.rna_identity = database_identity(stage.nhmmer.database, **stage.nhmmer.settings())
    return MSACache(cfg.cache)


def align_target(target: Target, databases, config, out_dir, templates=None) -> dict:
    """One call: the align stage for one target outside a run (tests, notebooks);
    ``templates``: a :class:`~eksfold.config.TemplateConfig` (default: OpenFold's, auto)."""
    from types import SimpleNamespace

    from ..config import RunConfig, TemplateConfig

    stage = AlignStage(SimpleNamespace(config=RunConfig(
        databases=databases, align=config, templates=templates or TemplateConfig())))
    stage.open()
    return stage.run_unit(target, None, Path(out_dir))
