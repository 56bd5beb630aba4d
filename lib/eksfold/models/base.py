"""The model back-end contract: everything eksfold needs to know about one model family.

A back end is built for one preset (``get_backend("model_1_ptm")``) and answers, without
loading anything heavy, what the alignment stage must produce for it (:meth:`inputs`), what
a fold writes and which confidence metrics it reports, its inference-settings ladder, its
cost hooks (shard sizing, the planner, Job sizing) and which targets it refuses. Only
:meth:`load` builds the network (preset, weights, device) and returns a :class:`Folder`
that folds many targets. Stages, executors, the planner, the summary and the notebooks ask a
back end; they never name a model.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol


@dataclass(frozen=True)
class AlignInputs:
    """What a family needs from the alignment stage for one target.

    ``msas``: MSA kinds (database roles of :class:`~eksfold.config.DatabaseConfig`, any that are
    configured are used). ``template_hits``: template searches whose hit files the model reads
    (``"pdb70"``: HHsearch of the UniRef90 MSA against PDB70, ``pdb70_hits.hhr``;
    ``"pdb_seqres"``: hmmsearch against ``pdb_seqres``, ``pdb_hits.sto``); empty when the
    preset runs without templates. ``paired_msas``: the family pairs its chains' MSAs by
    species itself (OpenFold3): heteromers get each chain's UniProt hits
    (:mod:`eksfold.alignment.pairing`). ``rna_msas``: RNA database roles the family reads MSAs
    of RNA chains from (OpenFold3: ``("rfam",)``, :mod:`eksfold.alignment.rna`).
    """

    msas: tuple[str, ...]
    template_hits: tuple[str, ...] = ()
    paired_msas: bool = False
    rna_msas: tuple[str, ...] = ()


class Folder(Protocol):
    """A built network (what :meth:`ModelBackend.load` returns): folds target after target."""

    timings: dict            # fixed costs paid by load: model_load_s, warmup_s (reported once)
    device: object           # where it runs; str(device) names it ("cpu", "cuda:0")
    device_type: str         # "cpu" | "cuda": which settings ladder and memory budget apply

    def apply_setting(self, name: str) -> None: ...

    def fold(self, target, alignment_dir: str | Path, out_dir: str | Path) -> dict: ...


@dataclass(frozen=True)
class PublishedWeights:
    """The published parameters a preset uses: ``name`` (a catalogue entry of
    :mod:`eksfold.data.weights`), ``uri`` it is downloaded from, and ``skip``: why it is not
    worth fetching here (None: fetch it)."""

    name: str
    uri: str | None
    skip: str | None = None


@dataclass(frozen=True)
class SettingInfo:
    """One rung of a family's inference-settings ladder, as generic code sees it."""

    name: str
    description: str = ""
    low_memory: bool = False     # a setting OpenFold-style "long sequence" Jobs start from


class ModelBackend:
    """Base class; a family subclasses it in ``eksfold/models/<family>/`` and registers it
    with :func:`eksfold.models.register_family` (one line)."""

    family: str = ""
    title: str = ""                      # for people: "OpenFold (AlphaFold2 architecture)"
    # files every successful fold writes into the unit's folder
    outputs: tuple[str, ...] = ("unrelaxed.pdb", "plddt.npy")
    # confidence metrics a fold reports (metrics keys): key -> meaning
    confidence: dict[str, str] = {}
    memory_grows_with: str = "residues"  # "residues" | "tokens" (what the cost model scales by)
    # a setting name meaning "the network as the family's own code builds it": no ladder, no
    # out-of-memory fallback (None: the family has none)
    as_built_setting: str | None = None
    default_setting: str = "default"     # used when no cost model chooses one
    fixed_cost_s: float = 30.0           # per worker: start, imports, build, weights, warm-up
    # folds complexes (Target.complex): ColabFold "A:B" records and AlphaFold3/OpenFold3 jobs
    # are read as one target each (eksfold.target_files.read_targets(complexes=True))
    takes_complexes: bool = False
    # template searches whose hit files the family reads (eksfold.templates.settings.ROUTES),
    # its default first (--template-search auto)
    template_routes: tuple[str, ...] = ("hhsearch", "hmmsearch")
    # the container image (ECR repository name) a worker folding with this family needs, when
    # the base worker image cannot (eksfold.k8s.images); None: the base image
    worker_image: str | None = None
    # the network runs in a child process of the worker (its own environment): memory
    # admission reserves the child's predicted peak plus the worker's own memory
    folds_in_child: bool = False

    def __init__(self, preset: str):
        self.preset = preset

    # -- presets --------------------------------------------------------------------------
    @classmethod
    def presets(cls) -> tuple[str, ...]:
        """The preset names this family answers to (the registry routes by them)."""
        return ()

    @classmethod
    def accepts(cls, preset: str) -> bool:
        return preset.partition("+")[0] in cls.presets()

    @classmethod
    def setup_checks(cls) -> list[tuple[str, str, str, object]]:
        """Set-up check rows ``(component, check, status, detail)`` for this family's install
        (``eksfold check``, notebook 00); status "ok", "missing", "optional" or "info"."""
        return []

    def check(self) -> None:
        """Raise :class:`~eksfold.errors.ConfigError` for an unusable preset, before any work."""

    # -- inputs -----------------------------------------------------------------------------
    def uses_templates(self, requested: bool | None = None) -> bool:
        """Whether folds use template structures (``requested`` None: the preset's default)."""
        return bool(requested)

    def inputs(self, templates: bool | None = None) -> AlignInputs:
        raise NotImplementedError

    # -- published weights (``--weights auto``, eksfold.weights_choice) ---------------------
    def published_weights(self) -> PublishedWeights | None:
        """Which published parameters this preset uses and where from (None: none published)."""
        return None

    def weights_problem(self, path, name: str) -> str | None:
        """Why a downloaded parameter file cannot be loaded for this preset (None: it can)."""
        return None

    # -- the network ------------------------------------------------------------------------
    def load(self, config) -> Folder:
        """Build the network for ``config`` (an InferConfig: weights, device, seed, warm-up)."""
        raise NotImplementedError

    def attach_templates(self, folder: Folder, run_config) -> None:
        """Give a loaded ``folder`` the run's template inputs (a family without templates: no-op)."""

    def templates_per_fold(self, folder: Folder) -> int:
        """Template structures a fold of ``folder`` may use (the cost model adds their measured
        term; 0: none attached, or a family without templates)."""
        return 0

    # -- settings ladder and costs ----------------------------------------------------------
    def ladder(self, device_type: str = "cpu", names=None) -> list[SettingInfo]:
        """Inference settings usable on ``device_type``, fastest first."""
        return []

    def next_lower(self, name: str, device_type: str = "cpu", names=None) -> str | None:
        order = [s.name for s in self.ladder(device_type, names)]
        i = order.index(name) if name in order else len(order)
        return order[i + 1] if i + 1 < len(order) else None

    def measure_point(self, length: int, setting: str, preset: str, **options) -> dict:
        """Build the network, switch it to ``setting`` and time one fold of ``length`` residues
        in this process: a row of the settings sweep (``eksfold bench settings``)."""
        raise NotImplementedError(f"{self.family} has no settings sweep")

    def predicted_seconds(self, length: int) -> float:
        """Seconds one fold of ``length`` residues takes on the reference machine."""
        return 1.0 + 0.01 * length

    def resources(self, length: int) -> tuple[float, float, int]:
        """(CPUs, memory GB, GPUs) one fold of ``length`` needs."""
        return (4, 32, 1)

    def prepare_targets(self, targets: list, errors: list) -> list:
        """Checks that need the family's own tools, once per run when targets are read (e.g.
        OpenFold3's ligands with RDKit); bad targets go to ``errors``. Default: none."""
        return targets

    # -- refusal ----------------------------------------------------------------------------
    def refuse(self, target) -> str | None:
        """Why this family cannot fold ``target`` at all (None: it can)."""
        return None
