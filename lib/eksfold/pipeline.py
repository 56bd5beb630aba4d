"""One call from a FASTA file to a finished run: :func:`run_pipeline`."""
from __future__ import annotations

import dataclasses
import hashlib
import logging
from pathlib import Path

from .alignment.pairing import databases_for, plan as pairing_plan
from .alignment.rna import databases_for as rna_databases_for, plan as rna_plan
from .config import (AlignConfig, DatabaseConfig, InferConfig, RelaxConfig, RunConfig,
                     ScoreConfig, TemplateConfig, default_databases)
from .contracts import DEFAULT_PRESET, DEFAULT_WEIGHTS
from .errors import TargetError
from .executors import execute, get_executor
from .models import get_backend
from .results import write_summary
from .run import Run
from .target_files import read_targets
from .targets import Target, select
from .templates.settings import pin_date, plan as template_plan, resolve_route
from .site import run_dir, target_file
from .weights import check_weights_file, is_untrained, parse_weights, resolve_weights_path
from .weights_choice import WeightsChoice, choose_weights, is_auto

log = logging.getLogger(__name__)


def load_targets_for_run(source, ids=None, limit=None, shortest=False, max_length=None,
                         backend=None):
    """Targets from a FASTA path or a list of Targets; returns (targets, rejected, inputs).
    ``backend``: the run's model back end (whether it folds complexes, its own checks)."""
    rejected: list = []
    if isinstance(source, (str, Path)):
        source = target_file(source)   # a file or folder of targets, or a set like "cameo2022"
        targets = read_targets(source, errors=rejected,
                               complexes=bool(getattr(backend, "takes_complexes", False)))
        if backend is not None:
            targets = backend.prepare_targets(targets, rejected)
        # Absolute: analysis run from elsewhere finds the target set (and its references) again.
        inputs = {"fasta": str(source), "fasta_sha256": _digest(source)}
    else:
        targets, inputs = list(source), {"fasta": None}
    targets = select(targets, ids=ids, limit=limit, shortest=shortest, max_length=max_length)
    inputs.update(selection={"ids": ids, "limit": limit, "shortest": shortest,
                             "max_length": max_length})
    return targets, rejected, inputs


def _digest(path: Path) -> str:
    """SHA-256 of an input file, or of a folder's files (names and contents, in name order)."""
    if path.is_file():
        return hashlib.sha256(path.read_bytes()).hexdigest()
    digest = hashlib.sha256()
    for item in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(f"{item.relative_to(path)}\0".encode() + hashlib.sha256(item.read_bytes()).digest())
    return digest.hexdigest()


def _refuse_unfit(targets, preset: str, device: str) -> dict[str, str]:
    """The targets predicted not to fit this machine even with the most frugal setting, with
    the reason (length, predicted and available memory): refused before any work."""
    from .memory.chooser import memory_budget, refuse_unfit, usable_model

    kind = "cuda" if device.startswith("cuda") else "cpu"   # "auto" on a GPU node: see worker
    model, why_not = usable_model(kind, preset)
    if model is None:
        log.info("nothing refused up front: %s", why_not)
        return {}
    if kind != "cpu":   # the GPU's free memory is known to the worker on the GPU node only
        return {}
    budget = memory_budget("cpu")
    _, errors = refuse_unfit(targets, budget.mb, model)
    for problem in errors:
        log.error("refusing %s (%s limit)", problem, budget.source)
    return {e.target: f"{e.problem} ({budget.source})" for e in errors}


def _score_config(fasta) -> ScoreConfig:
    """The ``score`` stage is on when reference structures are found for the input (an
    absolute path: workers elsewhere, Pods on the shared volume, read the same folder)."""
    from .results import references_for

    found = references_for(fasta)
    if found is not None and "://" in str(found):   # references on S3: read by the workers
        return ScoreConfig(references=str(found))
    if found is not None and not Path(found).is_dir():
        log.warning("references folder %s not found: no score stage", found)
        found = None
    return ScoreConfig(references=str(Path(found).resolve()) if found else None)


def _absolute(databases: DatabaseConfig) -> DatabaseConfig:
    """Database paths as workers elsewhere (other directories, Pods) will see them."""
    return DatabaseConfig(**{k: (v if v is None or "://" in v or v.startswith("/")
                                 else str(Path(v).resolve()))
                             for k, v in dataclasses.asdict(databases).items()})


def run_pipeline(source: str | Path | list[Target], root: str | None = None, *, preset: str = DEFAULT_PRESET,
                 weights: str | WeightsChoice = DEFAULT_WEIGHTS, databases: DatabaseConfig | None = None,
                 align: AlignConfig | None = None, relax: bool | RelaxConfig | None = None,
                 device: str = "auto", seed: int = 0, settings: str = "auto",
                 templates: TemplateConfig | None = None, executor: str = "local", executor_options: dict | None = None,
                 stages=None, ids=None, limit: int | None = None, shortest: bool = False,
                 max_length: int | None = None, reporter=None) -> Run:
    """Fold the targets of ``source`` into the run root ``root`` and write its summary table.

    Rerunning with the same arguments resumes: finished units are skipped, failed and missing
    ones are run again. ``weights`` is a weights spec (:mod:`eksfold.weights`), ``"auto"``
    (published weights if reachable, else labelled random: :mod:`eksfold.weights_choice`; the
    choice and its reason are printed and recorded in the manifest) or a resolved
    :class:`~eksfold.weights_choice.WeightsChoice`. ``relax`` adds the Amber relaxation stage (default: on for trained
    weights, off for untrained ones, whose structures cannot be minimised). Returns the :class:`~eksfold.run.Run`; read results with
    :func:`eksfold.results.load_summary`.
    """
    backend = get_backend(preset)  # fail fast on a typo, before any work
    root = root or run_dir("default")
    targets, rejected, inputs = load_targets_for_run(source, ids, limit, shortest, max_length,
                                                     backend)
    if not isinstance(weights, WeightsChoice):
        choice = choose_weights(weights, preset)
        if is_auto(weights):
            print(choice.line(), flush=True)   # the one line that says what the run folds with
    else:
        choice = weights
    weights = choice.weights
    inputs["weights"] = choice.to_dict()
    for problem in rejected:
        log.error("skipping invalid target: %s", problem)
    if not targets:
        shown = "; ".join(str(p) for p in rejected[:3]) + (" ..." if len(rejected) > 3 else "")
        raise TargetError(str(source), f"no valid target to run ({len(rejected)} refused: {shown})")
    if not isinstance(relax, RelaxConfig):
        relax = RelaxConfig(enabled=not is_untrained(weights) if relax is None else bool(relax))
    databases = rna_databases_for(backend, databases_for(backend,
                                                          databases or default_databases()))
    config = RunConfig(databases=_absolute(databases),
                       align=align or AlignConfig(),
                       infer=InferConfig(preset=preset, weights=weights, device=device, seed=seed,
                                         settings=settings),
                       relax=relax, score=_score_config(inputs.get("fasta")),
                       templates=resolve_route(pin_date(templates or TemplateConfig(), root),
                                               preset, root))
    log.info("templates: %s", template_plan(config).reason)   # ConfigError before any work (#20)
    pairing = pairing_plan(config)   # ConfigError for a missing uniprot database, before any work
    if pairing.wanted:
        tool = "mmseqs2" if config.align.msa_mode == "mmseqs2" else "jackhmmer"
        log.info("paired MSAs of complexes: %s", f"{tool} against uniprot {pairing.database}"
                 if pairing.active else pairing.reason)
    rna = rna_plan(config)   # ConfigError for a missing rfam database, before any work
    if rna.wanted:
        log.info("MSAs of RNA chains: %s", f"nhmmer against rfam {rna.database}"
                 if rna.active else rna.reason)
    if parse_weights(weights).kind == "file" and (stages is None or "infer" in stages):
        # a truncated or corrupt checkpoint: one clear error before any unit, not one per fold
        check_weights_file(resolve_weights_path(weights))
    run = Run.create(root, targets, config, inputs=inputs, rejected=rejected)
    # refused for this machine's memory now (rewritten on every invocation: another machine
    # or a larger limit may fit them); their units are not run
    refused = (_refuse_unfit(targets, preset, device) if settings == "auto" and executor == "local"
               else {})
    # and those the model family cannot fold at all (its own rules, whatever the machine)
    for target in targets:
        why = backend.refuse(target)
        if why:
            log.error("refusing %s: %s", target.id, why)
            refused[target.id] = why
    run.write_refused(refused)
    if is_untrained(config.infer.weights):
        log.warning("weights=%s: UNTRAINED random weights - structures and pLDDT are meaningless; "
                    "runtime and memory figures are real", config.infer.weights)
    runner = get_executor(executor, **(executor_options or {}))
    try:
        execute(run, runner, stages=stages, reporter=reporter, skip=refused)
    finally:
        write_summary(run)  # also after Ctrl-C: the table shows what finished
    return run
