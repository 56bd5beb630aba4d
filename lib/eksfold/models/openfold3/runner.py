"""The warm OpenFold3 runner (runs in ``.venv-of3``): weights loaded once, then many queries.

OpenFold3's ``run_openfold predict`` builds the network and loads the checkpoint on every
call. Here one :class:`InferenceExperimentRunner` is built and ``setup()`` (config, network,
checkpoint) runs once; each query then gets a fresh Lightning trainer and data module (both are
cached properties of OpenFold3's runner, bound to one query set and one output directory) and
the same network. The model reseeds itself from each (query, seed) in ``predict_step``, so a
query's result does not depend on what ran before it in the same process.

A query is done only when its outputs exist and parse (:mod:`.outputs`): OpenFold3 logs a
failed prediction and carries on, exit code 0.

Command line (JSON lines on stdout; OpenFold3's own prints go to stderr)::

    python -m eksfold.models.openfold3.runner --checkpoint C --settings S.json --work W \\
        run QUERIES.json OUT            # each query of an OpenFold3 query JSON, one by one
    python -m eksfold.models.openfold3.runner ... serve   # requests on stdin, one JSON a line

A serve request is ``{"query_set": ..., "out_dir": ..., "setting"?: NAME, "templates"?: ...}``:
the memory setting of :data:`.settings.LADDER` to fold with, switched on the loaded network
(OpenFold3 reads those values at forward time; nothing is rebuilt), and the template settings
(:func:`.settings.template_settings`: OpenFold3's ``template_preprocessor_settings``, or null
for none; absent: the runner YAML's). Templates are data-side only (OpenFold3's data module
reads ``use_templates`` and the preprocessor settings when it is built, once per query), so
they too switch per query.
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from . import outputs
from .checkpoint import read_label

# Attributes of OpenFold3's runner cached per query set / output directory (cached_property).
_PER_QUERY = ("output_dir", "log_dir", "trainer", "callbacks", "data_module_config",
              "lightning_data_module")


def confine_environment(work: str | Path) -> dict:
    """Point OpenFold3's scratch files at ``work``: ``$TMPDIR`` (its config writes
    ``$TMPDIR/of3-of-<user>/template_data/``) and ``$OPENFOLD_CACHE`` (it reads a default
    ``runner.yml`` from there and looks for checkpoints there). Must run before openfold3 is
    imported; returns the variables set."""
    work = Path(work).resolve()
    env = {"TMPDIR": str(work / "tmp"), "OPENFOLD_CACHE": str(work / "openfold_cache")}
    for path in env.values():
        Path(path).mkdir(parents=True, exist_ok=True)
    os.environ.update(env)
    tempfile.tempdir = None  # re-read $TMPDIR
    _short_multiprocessing_tempdir(Path(env["TMPDIR"]))
    return env


def _short_multiprocessing_tempdir(tmp: Path) -> None:
    """OpenFold3's template preprocessor starts a ``multiprocessing.Manager``, which listens on
    a Unix socket in multiprocessing's temp dir (``<tmp>/pymp-XXXXXXXX/listener-XXXXXXXX``); a
    socket path is limited to 107 bytes, and under a deep ``$TMPDIR`` (a test's, a worker's
    scratch) the manager fails to start and the query fails with a bare ``EOFError``. As
    later CPython versions do, the dir then goes to the system's ``/tmp`` (only the socket;
    multiprocessing removes the dir at exit)."""
    import multiprocessing.process

    if len(str(tmp)) + len("/pymp-XXXXXXXX/listener-XXXXXXXX") < 100 or not Path("/tmp").is_dir():
        return
    short = tempfile.mkdtemp(prefix="pymp-", dir="/tmp")
    import multiprocessing.util
    multiprocessing.util.Finalize(None, shutil.rmtree, args=(short, True), exitpriority=-100)
    multiprocessing.process.current_process()._config["tempdir"] = short


class WarmRunner:
    """One OpenFold3 network in memory, serving queries."""

    def __init__(self, checkpoint: str | Path, settings: dict, work: str | Path):
        confine_environment(work)
        started = time.perf_counter()
        from openfold3.entry_points.experiment_runner import InferenceExperimentRunner
        from openfold3.entry_points.import_utils import _configure_torch_backend, _enable_tf32
        from openfold3.entry_points.validator import InferenceExperimentConfig

        # What `run_openfold predict` does before building its runner (use_tf32 defaults on).
        _configure_torch_backend()
        _enable_tf32()
        self.work = Path(work).resolve()
        self.checkpoint = Path(checkpoint).resolve()
        self.label = read_label(self.checkpoint)
        self.settings = settings
        settings = json.loads(json.dumps(settings))  # OpenFold3's validators mutate
        settings.setdefault("experiment_settings", {})["output_dir"] = str(self.work / "setup")
        config = InferenceExperimentConfig(inference_ckpt_path=self.checkpoint, **settings)
        self.runner = InferenceExperimentRunner(config)
        self.runner.setup()
        # OpenFold3 featurises a query's first (query, seed) batch before predict_step reseeds,
        # from the global RNGs: Python's `random` (reference-conformer seeds), seeded from OS
        # entropy in every process, and torch's. So `run_openfold predict` gives the first
        # seed of a query a result that depends on the process and on what ran before it;
        # later seeds are featurised after predict_step's seed_everything and reproduce. Here
        # the RNGs are seeded once after loading and that state restored before every query:
        # every seed of a query reproduces, independent of process and order.
        # torch's too: whatever ran before in this process (making a random checkpoint draws
        # from it) must not change the result.
        import random

        import numpy as np
        import torch
        random.seed(0)
        np.random.seed(0)
        torch.manual_seed(0)
        self._rng_state = _rng_state()
        self.default_seeds = list(self.runner.seeds)
        self.samples = int(self.runner.num_diffusion_samples)
        # the runner YAML's template settings: what a request without "templates" folds with
        exp = self.runner.experiment_config
        self._yaml_templates = (exp.experiment_settings.use_templates,
                                exp.template_preprocessor_settings)
        self.load_seconds = time.perf_counter() - started

    def info(self) -> dict:
        model = self.runner.lightning_module.model
        return {"ready": True, "checkpoint": str(self.checkpoint), "label": self.label,
                "untrained": bool(self.label.get("untrained")),
                "parameters": sum(p.numel() for p in model.parameters()),
                "samples": self.samples, "seeds": self.default_seeds,
                "load_seconds": round(self.load_seconds, 3),
                "memory_settings": self.apply_setting(None)}

    def _retarget(self, out_dir: Path, seeds: list[int]) -> None:
        for name in _PER_QUERY:
            self.runner.__dict__.pop(name, None)
        self.runner.experiment_config.experiment_settings.output_dir = out_dir
        self.runner.experiment_config.experiment_settings.log_dir = out_dir / "logs"
        self.runner.seeds = seeds
        # OpenFold3's MSA settings name one workspace and one record directory per run and
        # refuse to create either twice: fresh settings (a fresh run name) per query, their
        # records under the query's output as `run_openfold predict` puts them.
        config = self.runner.experiment_config
        msa = type(config.msa_computation_settings)(
            **config.msa_computation_settings.model_dump())
        msa.set_saved_output_root(out_dir / "msas")
        config.msa_computation_settings = msa
        # predict_step writes its per-query error log under the module's log_dir.
        self.runner.lightning_module.log_dir = self.runner.log_dir
        # the query's MSA rows and templates as OpenFold3 featurised them (callbacks: a fresh
        # cached list)
        self.msa_rows = {}
        self.runner.callbacks.append(_msa_rows_callback(self.msa_rows))

    def set_templates(self, templates) -> bool:
        """Fold the next queries with ``templates``: OpenFold3's template preprocessor settings
        (a dict, :func:`.settings.template_settings`), None for no templates, or ``...`` for
        the runner YAML's. Its scratch (template cache entries) goes under the runner's work
        folder unless the settings name one. Returns whether templates are on."""
        from openfold3.core.data.pipelines.preprocessing.template import (
            TemplatePreprocessorSettings)

        exp = self.runner.experiment_config
        if templates is ...:
            use, settings = self._yaml_templates
        elif templates is None:
            use, settings = False, self._yaml_templates[1]
        else:
            values = {"output_directory": str(self.work / "template_data"), **templates}
            use, settings = True, TemplatePreprocessorSettings(**values)
        exp.experiment_settings.use_templates = use
        exp.template_preprocessor_settings = settings
        return use

    def apply_setting(self, name: str | None) -> dict:
        """Switch the loaded network to the memory setting ``name`` of :mod:`.settings`
        (None: leave it as it is); the values it folds with now."""
        from .settings import apply_setting, current

        model = self.runner.lightning_module.model
        if name is not None:
            self.setting = name
            return apply_setting(model, name)
        return current(model)

    def predict(self, query_set: dict, out_dir: str | Path,
                setting: str | None = None, templates=...) -> list[dict]:
        """Run every query of an OpenFold3 query set (``{"seeds"?, "queries": {...}}``) into
        ``out_dir``, one query at a time, with the memory ``setting`` (None: the one set
        last; as built at first) and ``templates`` (:meth:`set_templates`); one result dict
        per query, never raising for a query's failure (an allocation failure is flagged
        ``oom``)."""
        from openfold3.projects.of3_all_atom.config.inference_query_format import (
            InferenceQuerySet)

        out_dir = Path(out_dir).resolve()
        seeds = [int(s) for s in query_set.get("seeds") or self.default_seeds]
        memory = self.apply_setting(setting)
        use_templates = self.set_templates(templates)
        results = []
        for name, query in query_set["queries"].items():
            started, cpu, started_at = time.perf_counter(), time.process_time(), time.time()
            result = {"query": name, "out_dir": str(out_dir), "seeds": seeds,
                      "samples": self.samples, "untrained": bool(self.label.get("untrained")),
                      "setting": getattr(self, "setting", None), "memory_settings": memory,
                      "use_templates": use_templates}
            try:
                one = InferenceQuerySet.model_validate({"seeds": seeds, "queries": {name: query}})
                # Files left by an earlier attempt must not pass for this attempt's outputs.
                shutil.rmtree(out_dir / name, ignore_errors=True)
                self._retarget(out_dir, seeds)
                _set_rng_state(self._rng_state)
                _reset_cuda_peak()
                try:
                    self.runner.run(one)
                finally:
                    # Each data module creates an MSA workspace under $TMPDIR and refuses to
                    # reuse one (FileExistsError on the next query): remove it per query.
                    self.runner.cleanup_msa_workspace()
                samples = outputs.collect(out_dir, name, seeds, self.samples)
                ranking = outputs.write_ranking(out_dir, name, samples, {
                    "untrained": result["untrained"], "checkpoint": str(self.checkpoint)})
                result.update(ok=True, ranking=str(ranking),
                              best=outputs.rank(samples)[0], **self.msa_rows)
                if use_templates:
                    result["template_ids"] = self._template_ids(name)
            except outputs.OutputError as exc:
                result.update(ok=False, error=f"{exc}{_predict_error(out_dir, started_at)}")
            except Exception as exc:  # a query's bad input must not end the worker
                from ...memory.retry import is_out_of_memory

                result.update(ok=False, error=f"{type(exc).__name__}: {exc}",
                              oom=is_out_of_memory(exc),
                              traceback=traceback.format_exc(limit=5))
            # CPU seconds too: on a shared machine wall time mostly measures the neighbours.
            result["seconds"] = round(time.perf_counter() - started, 3)
            result["cpu_seconds"] = round(time.process_time() - cpu, 3)
            result["cuda_peak_mb"] = _cuda_peak_mb()
            results.append(result)
        return results


    def _template_ids(self, name: str) -> dict:
        """Per protein entity (its chain ids joined by commas): the templates OpenFold3's
        preprocessor kept for it, best first (``<entry>_<chain>``), from the query set as its
        data module left it."""
        try:
            query = self.runner.lightning_data_module.inference_config.query_set.queries[name]
        except (AttributeError, KeyError):
            return {}
        return {",".join(c.chain_ids): list(c.template_entry_chain_ids or [])
                for c in query.chains if c.molecule_type.name == "PROTEIN"}


def _msa_rows_callback(record: dict):
    """A Lightning callback that keeps, from the first batch of a query, OpenFold3's own MSA
    features: ``paired_msa_rows`` (its ``num_paired_seqs`` less the query row: rows paired
    across chains by species), ``msa_rows`` (all rows of the MSA feature) and
    ``msa_rows_per_chain`` (per chain, numbered as below: rows of the ``msa`` feature with a
    residue, not a gap, at any of its tokens, the query row included); and its template
    features: ``template_slots`` (template rows of the batch) and ``templates_per_chain``:
    for each chain (numbered 1.. in OpenFold3's token order, its ``asym_id``), the templates
    whose features cover any of its tokens (``template_pseudo_beta_mask``): what reaches the
    model."""
    import pytorch_lightning as pl

    class MsaRows(pl.Callback):
        def on_predict_batch_start(self, trainer, pl_module, batch, batch_idx,
                                   dataloader_idx=0):
            if record or "num_paired_seqs" not in batch:   # an empty (failed) batch
                return
            record["paired_msa_rows"] = int(batch["num_paired_seqs"].max()) - 1
            if "msa" in batch:
                record["msa_rows"] = int(batch["msa"].shape[-3])
            msa, asym = batch.get("msa"), batch.get("asym_id")
            if msa is not None and asym is not None:
                # per chain: MSA rows with a residue (not a gap) at any of its tokens, the query
                # row included. OpenFold3 pads a chain whose MSA is shallower than the deepest
                # with all-gap rows and leaves them unmasked (msa_mask is 1), so the gap
                # channel, not the mask, tells a chain's own rows.
                from openfold3.core.data.resources.residues import STANDARD_RESIDUES_WITH_GAP_1

                gap = STANDARD_RESIDUES_WITH_GAP_1.index("-")
                residue, chains = msa[0][..., gap] == 0, asym[0]   # [rows, tokens], [tokens]
                record["msa_rows_per_chain"] = {
                    int(a): int(residue[:, chains == a].any(dim=-1).sum())
                    for a in chains.unique().tolist() if a > 0}
            mask, asym = batch.get("template_pseudo_beta_mask"), batch.get("asym_id")
            if mask is not None and asym is not None:
                mask, asym = mask[0], asym[0]            # [templates, tokens], [tokens]
                record["template_slots"] = int(mask.shape[0])
                record["templates_per_chain"] = {
                    int(a): int((mask[:, asym == a] > 0).any(dim=-1).sum())
                    for a in asym.unique().tolist() if a > 0}

    return MsaRows()


def _rng_state():
    import random

    import numpy as np
    import torch
    return torch.get_rng_state(), np.random.get_state(), random.getstate()


def _set_rng_state(state) -> None:
    import random

    import numpy as np
    import torch
    torch.set_rng_state(state[0])
    np.random.set_state(state[1])
    random.setstate(state[2])


def _reset_cuda_peak() -> None:
    import torch
    if torch.cuda.is_available():
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _cuda_peak_mb() -> float | None:
    """The query's peak of memory allocated by torch on the GPU (None on CPU)."""
    import torch
    if not torch.cuda.is_available():
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def _predict_error(out_dir: Path, since: float) -> str:
    """The last line of OpenFold3's error log (shared by the queries of ``out_dir``), where it
    logged a failure during this query."""
    log = out_dir / "logs" / "predict_err_rank0.log"
    if not log.exists() or log.stat().st_mtime < since:
        return ""
    lines = [ln for ln in log.read_text().splitlines() if ln.strip()]
    return f" (OpenFold3 logged: {lines[-1][:300]})" if lines else ""


def _protocol_stdout():
    """A private copy of stdout for our JSON lines; fd 1 then goes to stderr, so OpenFold3's
    and Lightning's prints cannot interleave with the protocol."""
    proto = os.fdopen(os.dup(1), "w", buffering=1)
    sys.stdout.flush()
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return proto


def main(argv=None) -> int:
    import argparse
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--checkpoint", required=True)
    parser.add_argument("--settings", required=True, help="runner settings JSON (settings.py)")
    parser.add_argument("--work", required=True, help="scratch directory for OpenFold3")
    parser.add_argument("--random-seed", type=int, default=None,
                        help="make the checkpoint first (seeded random, UNTRAINED) if it is "
                             "missing: one process start instead of two")
    parser.add_argument("--configuration", default="reduced",
                        help="architecture of a --random-seed checkpoint (full, reduced)")
    parser.add_argument("--setting", default=None,
                        help="memory setting of .settings.LADDER to start with (default: as "
                             "built); a serve request may name another")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("queries", help="OpenFold3 query JSON")
    run.add_argument("out")
    sub.add_parser("serve")
    args = parser.parse_args(argv)

    proto = _protocol_stdout()
    if args.random_seed is not None:
        from .checkpoint import make_random_checkpoint
        confine_environment(args.work)
        make_random_checkpoint(args.checkpoint, args.random_seed, args.configuration)
    warm = WarmRunner(args.checkpoint, json.loads(Path(args.settings).read_text()), args.work)
    if args.setting:
        warm.apply_setting(args.setting)
    proto.write(json.dumps(warm.info()) + "\n")
    failed = 0
    if args.command == "run":
        for result in warm.predict(json.loads(Path(args.queries).read_text()), args.out):
            failed += not result["ok"]
            proto.write(json.dumps(result) + "\n")
    else:
        for line in sys.stdin:
            if not line.strip():
                continue
            request = json.loads(line)
            for result in warm.predict(request["query_set"], request["out_dir"],
                                       request.get("setting"),
                                       request.get("templates", ...)):
                failed += not result["ok"]
                proto.write(json.dumps(result) + "\n")
    proto.close()
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
