"""The OpenFold3 folder of a warm eksfold worker (main environment): the warm runner of
:mod:`.runner` as a child process in ``.venv-of3``, one query per unit.

The worker stays in the main environment (records, commits, leases); the child is started once
per worker by :meth:`OpenFold3Folder.load` (``runner ... serve``: the network built and the
checkpoint loaded once) and dies with it (``PR_SET_PDEATHSIG``). Each :meth:`fold` writes one
JSON request (the target as one OpenFold3 query, its chains pointing at the MSAs the align
stage wrote) and reads one JSON line back. OpenFold3 exits 0 for a failed query: the runner
reports a query done only when its outputs exist and parse (:mod:`.outputs`), so a failure
here is a failed unit carrying OpenFold3's reason.

Templates (:meth:`.backend.OpenFold3.attach_templates`): each protein entity's template hits
(the align stage's ``hmm_output.sto``, hmmsearch against ``pdb_seqres``; OpenFold3 reads
Stockholm, A3M and M8 hits, not HHsearch's ``.hhr``) become its ``template_alignment_file_path``
and the request carries OpenFold3's template preprocessor settings (structures from the
template mmCIF folder, the release-date cut-off, its cache under the runner's work folder).
OpenFold3's own preprocessor and featuriser do the rest; the record says per chain which
templates it kept and how many reached the model (its template features), and why a chain
has none.

Per unit the child's own peak memory is measured (its ``VmHWM``, reset before the query) and
added to the unit's (:meth:`eksfold.memory.usage.UnitMemory.count_child`).
"""
from __future__ import annotations

import ctypes
import json
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from ...errors import ConfigError, TargetError
from .complex import ComplexTarget, make_chain, make_target
from .environment import LIB, of3_env, of3_python
from .settings import get_setting, runner_settings, write_runner_yaml

log = logging.getLogger(__name__)

# MSA files of the align stage -> the names OpenFold3 reads them by (its MSASettings'
# max_seq_counts keys; a file with any other name is skipped by OpenFold3's parser).
# tests/test_openfold3_backend.py checks the targets against the installed OpenFold3.
MSA_NAMES = {
    "uniref90_hits.sto": "uniref90_hits.sto",
    "mgnify_hits.sto": "mgnify_hits.sto",
    "bfd_uniclust_hits.a3m": "bfd_uniclust_hits.a3m",
    "small_bfd_hits.sto": "bfd_uniref_hits.sto",       # no reduced-BFD name in OpenFold3
    "uniref_mmseqs.a3m": "mmseqs_colabfold.a3m",       # MMseqs2 mode, UniRef search
    "env_mmseqs.a3m": "colabfold_main.a3m",            # MMseqs2 mode, environmental search
    # heteromers: UniProt hits, which OpenFold3 pairs across chains by species (msas_to_pair)
    # and leaves out of the unpaired MSA (not in its aln_order)
    "uniprot_hits.sto": "uniprot_hits.sto",
    "uniprot_hits.a3m": "uniprot_hits.a3m",            # the same, MMseqs2 mode (UniProt names)
    # RNA chains: nhmmer against the rfam database (eksfold.alignment.rna), as AlphaFold3
    "rfam_hits.a3m": "rfam_hits.a3m",
}
UNTRAINED_NOTE = ("UNTRAINED RANDOM OpenFold3 WEIGHTS: structures and confidences are "
                  "meaningless; they exist to exercise the pipeline and measure cost.")


def chain_dir(chain_ids) -> str:
    """The align stage's sub-folder for one protein or RNA entity of a complex (its first
    chain)."""
    return f"chain_{chain_ids[0]}"


def as_complex(target) -> ComplexTarget:
    """The target as a :class:`ComplexTarget` (a single chain: one protein, chain A)."""
    if target.complex is not None:
        return ComplexTarget.from_dict({k: v for k, v in target.complex.items()
                                        if k != "tokens"})
    return make_target(target.id, [make_chain(target.id, "protein", ["A"],
                                              sequence=target.sequence)], target_id=target.id)


def msa_files(folder: Path, staging: Path) -> tuple[list[str], list[str]]:
    """Links in ``staging`` named as OpenFold3 reads them, for the MSAs in ``folder``:
    (paths given to OpenFold3, files it would not read)."""
    from ...alignment.msa import NOT_MSAS

    used, unused = [], []
    if not folder.is_dir():
        return used, unused
    staging.mkdir(parents=True, exist_ok=True)
    for path in sorted(folder.iterdir()):
        if path.suffix not in (".sto", ".a3m") or path.name in NOT_MSAS:
            continue
        name = MSA_NAMES.get(path.name)
        if name is None:
            unused.append(path.name)
            continue
        link = staging / name
        link.unlink(missing_ok=True)
        link.symlink_to(path.resolve())
        used.append(str(link))
    return used, unused


TEMPLATE_FIELDS = ("template_alignment_file_path", "template_cif_paths")


def query_for(target, alignment_dir: Path | None, staging: Path,
              templates: bool = False) -> tuple[dict, dict]:
    """One OpenFold3 query for ``target`` with each protein entity's MSAs, and what was used.

    A single-chain target's MSAs are the align folder itself; a complex's are one sub-folder
    per protein entity (:func:`chain_dir`), and per RNA entity its ``rfam_hits.a3m`` where the
    align stage searched one (the record says its rows and whether the cache gave it: ``rows``,
    ``cache_hit``); DNA and ligands get none (OpenFold3 then uses the query sequence alone).
    Chains that name their own MSA files keep them. ``templates``:
    each protein entity's template hits (hmmsearch's ``hmm_output.sto`` in its folder, which
    OpenFold3's StoParser reads) as its ``template_alignment_file_path`` when it holds any
    (read with :func:`eksfold.templates.hits.read_hits`: a malformed file fails the target); a
    chain naming its own template inputs keeps them.
    """
    from ...templates.hits import HMM_STO, read_hits

    complex_ = as_complex(target)
    query, used = complex_.to_query(), {}
    for chain in query["chains"]:
        if chain["molecule_type"] == "rna":
            _rna_msas(chain, alignment_dir, staging, used)
            continue
        if chain["molecule_type"] != "protein":
            continue
        folder = (alignment_dir if target.complex is None or alignment_dir is None
                  else alignment_dir / chain_dir(chain["chain_ids"]))
        record = used.setdefault(",".join(chain["chain_ids"]), {"files": [], "not_read": []})
        if templates and not any(k in chain for k in TEMPLATE_FIELDS):
            hits = folder / HMM_STO if folder is not None else None
            found = (len(read_hits(target.id, chain["sequence"], hits))
                     if hits is not None and hits.is_file() else None)
            if found:
                chain["template_alignment_file_path"] = str(hits.resolve())
            record.update(template_hits_file=hits.name if found is not None else None,
                          template_hits=found)
        if "main_msa_file_paths" in chain:
            continue
        files, unused = (msa_files(folder, staging / chain_dir(chain["chain_ids"]))
                         if folder is not None else ([], []))
        if files:
            chain["main_msa_file_paths"] = files
        record.update(files=[Path(f).name for f in files], not_read=unused)
    return query, used


def _rna_msas(chain: dict, alignment_dir: Path | None, staging: Path, used: dict) -> None:
    """An RNA entity's MSA (the align stage's ``chain_<id>/rfam_hits.a3m``), if any."""
    from ...alignment.rna import read_record

    if "main_msa_file_paths" in chain or alignment_dir is None:
        return
    folder = alignment_dir / chain_dir(chain["chain_ids"])
    files, unused = msa_files(folder, staging / chain_dir(chain["chain_ids"]))
    if not files:
        return
    chain["main_msa_file_paths"] = files
    searched = read_record(folder) or {}
    used[",".join(chain["chain_ids"])] = {
        "molecule_type": "rna", "files": [Path(f).name for f in files], "not_read": unused,
        "rows": searched.get("rows"), "cache_hit": searched.get("cache_hit")}


def template_record(query: dict, result: dict, msas: dict, mmcif_dir: str | None) -> dict:
    """The unit's template metrics from the runner's answer.

    ``templates``: per protein entity, the hits file given, the templates OpenFold3's
    preprocessor kept (best first), how many reached the model (per chain id: templates whose
    features cover its tokens) and, when none did, why. ``templates_used``: template rows
    holding any chain's template (OpenFold3 fills up to 4, each chain its own tokens);
    ``top_template`` and its release date: the first kept template of the first entity with
    one."""
    from ...templates.featurize import release_date

    order = [cid for chain in query["chains"] for cid in chain["chain_ids"]]
    # OpenFold3 numbers chains 1.. in query order (its asym_id): back to the chain ids
    per_id = {order[int(a) - 1]: n for a, n in (result.get("templates_per_chain") or {}).items()
              if 0 < int(a) <= len(order)}
    per_id = {k: per_id.get(k, 0) for k in order}
    kept_by = result.get("template_ids") or {}
    chains = {}
    for chain in query["chains"]:
        if chain["molecule_type"] != "protein":
            continue
        key = ",".join(chain["chain_ids"])
        given = msas.get(key, {})
        kept = kept_by.get(key, [])
        used = max((per_id.get(c, 0) for c in chain["chain_ids"]), default=0)
        entry = {"hits_file": given.get("template_hits_file"), "hits": given.get("template_hits"),
                 "kept": kept, "used": used}
        if not used:
            entry["reason"] = (
                "no template hits file in its alignment folder"
                if entry["hits_file"] is None and "template_alignment_file_path" not in chain
                else "the template search found no hits" if entry["hits"] == 0
                else "no hit passed OpenFold3's template filters (release date, structure "
                     "file, sequence match)" if not kept
                else "OpenFold3 featurised none of the templates it kept")
        chains[key] = entry
    top = next((ids[0] for ids in (c["kept"] for c in chains.values()) if ids), None)
    top_date = (release_date(Path(mmcif_dir) / f"{top.split('_')[0]}.cif")
                if top and mmcif_dir else None)
    return {"templates": chains, "templates_per_chain": per_id,
            "templates_used": max(per_id.values(), default=0),
            "template_slots": result.get("template_slots"),
            "template_ids": [t for c in chains.values() for t in c["kept"]],
            "top_template": top, "top_template_date": top_date}


class RunnerOutOfMemory(MemoryError):
    """The runner ran out of memory folding a unit (killed by an OOM killer, or an
    allocation failed inside it): :func:`eksfold.memory.retry.is_out_of_memory` is true, so
    the unit is retried one setting lower in the same worker (a fresh runner if it died)."""


def _die_with_parent():
    # The runner holds GBs: it must not outlive a worker killed for memory or by a signal.
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(1, signal.SIGKILL)   # PR_SET_PDEATHSIG


class OpenFold3Folder:
    """A warm OpenFold3 runner (child process) folding one target per :meth:`fold`."""

    def __init__(self, backend, config):
        self.backend, self.config = backend, config
        self.preset = backend.preset
        self.device_type = self.device = _device(config.device)
        self.timings: dict = {}
        self.proc = None
        self.info: dict = {}
        self.setting = backend.as_built_setting   # as built until apply_setting
        self.returncode = None                      # the runner's, once it has ended
        # OpenFold3's template preprocessor settings (.settings.template_settings), set by
        # OpenFold3.attach_templates; None: folds without templates
        self.templates: dict | None = None
        self.work = Path(tempfile.mkdtemp(prefix="eksfold-of3-"))

    # -- the child process ---------------------------------------------------------------------
    def _checkpoint(self) -> tuple[Path, list[str]]:
        """The checkpoint file and runner options: seeded random (made by the runner, cached
        under ``$EKSFOLD_CACHE/openfold3``) or a file."""
        from ...weights import parse_weights

        spec = parse_weights(self.config.weights)
        configuration = self.backend.configuration
        if spec.untrained:
            from ...data.weights import cache_dir

            seed = spec.seed if spec.seed is not None else self.config.seed
            path = cache_dir().parent / "openfold3" / f"random-{configuration}-{seed}.pt"
            return path, ["--random-seed", str(seed), "--configuration", configuration]
        if spec.kind != "file":
            raise ConfigError(f"weights {self.config.weights!r}: OpenFold3 weights are a local "
                              "checkpoint file (.pt) or random[:SEED]; no OpenFold3 checkpoint "
                              "can be downloaded here")
        path = Path(spec.value)
        if not path.is_file():
            raise ConfigError(f"OpenFold3 checkpoint {path} not found")
        return path, []

    def load(self) -> "OpenFold3Folder":
        started = time.perf_counter()
        checkpoint, options = self._checkpoint()
        settings = runner_settings(self.backend.configuration,
                                   "gpu" if self.device_type == "cuda" else "cpu",
                                   num_diffusion_samples=self.backend.samples,
                                   seeds=[self.config.seed])
        self.settings_path = write_runner_yaml(self.work / "runner.json", settings)
        self.log_path = self.work / "runner.log"
        env = of3_env(self.work / "scratch")
        if self.config.threads:
            env["OMP_NUM_THREADS"] = str(self.config.threads)
        self._log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [of3_python(), "-m", "eksfold.models.openfold3.runner", "--checkpoint",
             str(checkpoint), "--settings", str(self.settings_path), "--work",
             str(self.work / "scratch"), *options, "serve"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._log, text=True,
            bufsize=1, env=env, cwd=str(self.work), preexec_fn=_die_with_parent)
        self.info = self._read("loading the network")
        from ...memory.usage import status_mb
        # what the runner holds with the network loaded (its peak per unit starts here)
        self.runner_rss_mb_after_load = status_mb("VmRSS", self.proc.pid)
        if self.info.get("untrained"):
            log.warning(UNTRAINED_NOTE)
        self.timings = {"model_load_s": round(time.perf_counter() - started, 3),
                        "load_seconds": self.info.get("load_seconds")}
        return self

    def _read(self, doing: str) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            code = self.returncode = self.proc.wait(timeout=30)
            self.proc = None
            raise RuntimeError(f"the OpenFold3 runner exited ({code}) while {doing}: "
                               f"{self._log_tail()}")
        return json.loads(line)

    def _log_tail(self, since: int = 0, chars: int = 1500) -> str:
        try:
            with open(self.log_path, "rb") as fh:
                fh.seek(since)
                return fh.read().decode(errors="replace")[-chars:]
        except OSError:
            return ""

    def folding_child(self) -> dict | None:
        """The runner as the chooser sees it: its resident memory now and after loading
        (the settings sweep measured its peak). None when it is not running (the next fold
        starts a fresh one)."""
        from ...memory.usage import status_mb

        if self.proc is None or self.proc.poll() is not None:
            return None
        rss = status_mb("VmRSS", self.proc.pid)
        return None if rss is None else {"pid": self.proc.pid, "rss_mb": rss,
                                         "baseline_mb": self.runner_rss_mb_after_load}

    def apply_setting(self, name: str) -> None:
        """The memory setting the next folds use (:data:`.settings.LADDER`); the runner
        switches its loaded network per request, so nothing restarts."""
        if name != self.backend.as_built_setting:
            get_setting(name)   # ConfigError names the choices
        self.setting = name

    # -- one unit -------------------------------------------------------------------------------
    def fold(self, target, alignment_dir, out_dir) -> dict:
        from ...memory.oomkill import own_oom_kills
        from ...memory.usage import UnitMemory, process_hwm_mb, reset_process_hwm

        if self.proc is None or self.proc.poll() is not None:
            self.load()   # the runner died with an earlier unit: a fresh one
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        staging = self.work / "msas" / target.id
        query, msas = query_for(target, Path(alignment_dir) if alignment_dir else None,
                                staging, templates=self.templates is not None)
        complex_ = as_complex(target)
        seeds = list(complex_.seeds or (self.config.seed,))
        request = {"query_set": {"seeds": seeds, "queries": {target.id: query}},
                   "out_dir": str(out), "templates": self.templates}
        if self.setting != self.backend.as_built_setting:
            request["setting"] = self.setting
        (out / "query.json").write_text(json.dumps(request["query_set"], indent=1) + "\n")
        log_start = self.log_path.stat().st_size
        pid = self.proc.pid
        reset_process_hwm(pid)
        kills_before = own_oom_kills()
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
            result = self._read(f"folding {target.id}")
        except (RuntimeError, BrokenPipeError) as exc:
            # The runner died: the kernel's word decides whether it was for memory
            why = self._killed_for_memory(pid, kills_before)
            if why:
                err = RunnerOutOfMemory(f"{target.id}: {why}")
                err.killed = "oom"   # counted as an out-of-memory kill (memory.runreport)
                raise err from exc
            raise
        finally:
            peak = process_hwm_mb(pid)
            if UnitMemory.current is not None:
                UnitMemory.current.count_child(peak)
            shutil.rmtree(staging, ignore_errors=True)
            (out / "openfold3.log").write_text(self._log_tail(log_start, 200_000))
        if result.get("oom"):   # an allocation failure inside the runner (it lives on)
            raise RunnerOutOfMemory(f"{target.id}: {result.get('error')}")
        if not result.get("ok"):
            if result.get("traceback"):   # the runner's own, for the worker's log
                log.warning("%s: OpenFold3 failed:\n%s", target.id, result["traceback"])
            raise TargetError(target.id, f"OpenFold3 did not predict it: {result.get('error')}")
        metrics = self._outputs(target, out, result, msas, peak)
        metrics["memory_settings"] = result.get("memory_settings")
        if self.templates is not None:
            metrics.update(template_record(query, result, msas,
                                           self.templates.get("structure_directory")))
        return metrics

    def _killed_for_memory(self, pid: int, kills_before: int | None) -> str | None:
        """Why the runner ``pid`` ended, when an OOM killer ended it: the runner is in the
        worker's memory cgroup, whose ``oom_kill`` counter counts it (a Pod's limit, the
        local executor's ``--infer-memory-mb``). None: ended otherwise, or no cgroup
        counter to tell (the error then stays what it was: not retried lower)."""
        import signal as signals

        from ...memory.oomkill import own_oom_kills

        if self.proc is not None:   # it died before its answer was read (a broken pipe)
            self.returncode = self.proc.wait(timeout=30)
            self.proc = None
        code = self.returncode
        if code != -signals.SIGKILL:
            return None
        kills = own_oom_kills()
        if kills_before is not None and kills is not None and kills > kills_before:
            return (f"the OpenFold3 runner (pid {pid}) was killed for memory: its memory "
                    f"cgroup counted {kills - kills_before} OOM kill(s)")
        return None

    def _outputs(self, target, out: Path, result: dict, msas: dict, peak) -> dict:
        """The best sample as the unit's main outputs, and the metrics."""
        import gemmi
        import numpy as np

        best = result["best"]
        shutil.copyfile(out / best["structure"], out / "unrelaxed.cif")
        structure = gemmi.read_structure(str(out / "unrelaxed.cif"))
        try:   # PDB only where representable (chain ids of one letter, < 100,000 atoms)
            structure.setup_entities()
            (out / "unrelaxed.pdb").write_text(structure.make_pdb_string())
        except (RuntimeError, ValueError) as exc:
            log.info("%s: no PDB file (%s)", target.id, exc)
        with np.load(out / best["confidences"]) as data:
            np.save(out / "plddt.npy", data["plddt"].astype(np.float32))   # per atom
            np.save(out / "pae.npy", data["pae"].astype(np.float32))       # token x token
        scores = best["scores"]
        confidences = {"target": target.id, "untrained": result.get("untrained"),
                       "best": best, "ranking": str(Path(result["ranking"]).relative_to(out))}
        (out / "confidences.json").write_text(json.dumps(confidences, indent=1) + "\n")
        shutil.copyfile(result["ranking"], out / "ranking.json")

        def number(key):
            value = scores.get(key)
            return None if value is None else round(float(value), 4)

        return {"mean_plddt": number("avg_plddt"), "ptm": number("ptm"),
                "iptm": number("iptm"), "ranking_score": number("sample_ranking_score"),
                "chain_ptm": scores.get("chain_ptm"),
                "chain_pair_iptm": scores.get("chain_pair_iptm"),
                "has_clash": scores.get("has_clash"),
                "chains": len(best["chains"]), "tokens": best["tokens"], "atoms": best["atoms"],
                "best_sample": {"seed": best["seed"], "sample": best["sample"]},
                "seeds": result["seeds"], "samples": result["samples"],
                "msas": msas, "msa_files": sum(len(m["files"]) for m in msas.values()),
                # OpenFold3's own MSA features of the query (its batch): paired rows across
                # chains (its num_paired_seqs less the query row) and all rows
                "paired_msa_rows": result.get("paired_msa_rows"),
                "msa_rows": result.get("msa_rows"),
                # per chain id (OpenFold3's asym_id 1.. in query order): its rows in the batch
                "msa_rows_per_chain": _per_chain_id(target, result.get("msa_rows_per_chain")),
                "preset": self.preset, "weights": self.config.weights,
                "untrained": bool(result.get("untrained")),
                "checkpoint": self.info.get("checkpoint"),
                "parameters": self.info.get("parameters"),
                "device": self.device, "feature_s": None,
                "inference_s": result.get("seconds"),
                "child_cpu_s": result.get("cpu_seconds"),
                "child_peak_rss_mb": None if peak is None else round(peak, 1),
                "gpu_peak_mb": result.get("cuda_peak_mb")}

    def close(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()   # the runner ends at end of input
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None
        if getattr(self, "_log", None):
            self._log.close()
        shutil.rmtree(self.work, ignore_errors=True)

    def __del__(self):
        try:
            self.close()
        except Exception:  # noqa: BLE001 - interpreter shutdown
            pass


def _per_chain_id(target, per_asym: dict | None) -> dict | None:
    """``{asym_id: n}`` of the runner (OpenFold3 numbers chains 1.. in query order) by chain
    id."""
    if per_asym is None:
        return None
    order = as_complex(target).chain_ids
    return {order[int(a) - 1]: n for a, n in per_asym.items() if 0 < int(a) <= len(order)}


def _device(spec: str) -> str:
    """"cpu" or "cuda" without importing torch in the worker (the runner has its own)."""
    if spec == "auto":
        return "cuda" if Path("/dev/nvidiactl").exists() else "cpu"
    if spec.startswith("cuda"):
        return "cuda"
    return "cpu"


__all__ = ["OpenFold3Folder", "MSA_NAMES", "query_for", "chain_dir", "LIB"]
