"""The ``openfold3`` family as the rest of eksfold sees it (:class:`OpenFold3`).

Presets: ``of3`` is OpenFold3's own predict configuration (368 M parameters, five diffusion
samples as AlphaFold3 and OpenFold3 default to); ``of3-tiny`` the reduced configuration of
:mod:`.settings` (33.6 M parameters, one sample) for tests and the demo. With ``random``
weights both are seeded random checkpoints labelled UNTRAINED (:mod:`.checkpoint`).

Costs scale with tokens (a residue or nucleotide each, a ligand's heavy atoms one each):
``Target.length`` of a complex is its token count.
"""
from __future__ import annotations

from ...errors import ConfigError
from ..base import AlignInputs, ModelBackend, SettingInfo
from .complex import ALPHABETS

# preset -> (architecture of .settings, diffusion samples per seed)
PRESETS = {"of3": ("full", 5), "of3-tiny": ("reduced", 1)}
AS_BUILT = "openfold3"
# templates per chain OpenFold3 featurises at inference (its TemplateSettings.n_templates)
N_TEMPLATES = 4

# FACTS (2026-12-05), full model, 1 sample, one thread on the shared 2-core machine:
# 51 tokens 160 s, 85 tokens (dimer) 314 s -> t^1.32. Reduced configuration, warm runner
# (tests/test_openfold3_pipeline.py, loaded machine): 10-21 CPU s a query at 28-48 tokens,
# mostly featurisation and fixed per-query costs -> 8 s + a tenth of the full model's.
CPU_FULL = (160.0, 51, 1.32)
# NVIDIA's OpenFold3 NIM 1.6 on one H100: 186 residues 2.9 s, 1,869 residues 72.5 s -> t^1.40
H100 = (2.9, 186, 1.40)


class OpenFold3(ModelBackend):
    family = "openfold3"
    title = "OpenFold3 (AlphaFold3-style: proteins, RNA, DNA, ligands)"
    outputs = ("unrelaxed.cif", "plddt.npy", "pae.npy", "confidences.json", "ranking.json")
    confidence = {"mean_plddt": "mean predicted lDDT over atoms (0-100), best sample",
                  "ptm": "predicted TM-score of the complex",
                  "iptm": "interface pTM (None for one chain)",
                  "ranking_score": "OpenFold3's sample ranking score (best sample)",
                  "chain_pair_iptm": "ipTM per pair of chains, as OpenFold3 writes it"}
    memory_grows_with = "tokens"
    as_built_setting = AS_BUILT      # --settings openfold3: as built, no out-of-memory fallback
    default_setting = "predict"      # auto without a cost model: the top rung, with fallback
    fixed_cost_s = 40.0   # runner start: torch + openfold3 imports, network build, checkpoint
    takes_complexes = True
    # its own environment (numpy 2, biotite >= 1) in its own image: cluster/images/worker-openfold3
    worker_image = "eksfold-worker-openfold3"
    folds_in_child = True       # OpenFold3 runs in its runner child (.venv-of3)

    @classmethod
    def presets(cls) -> tuple[str, ...]:
        return tuple(PRESETS)

    @classmethod
    def setup_checks(cls) -> list[tuple[str, str, str, object]]:
        from .environment import of3_python

        try:
            return [("openfold3", "environment", "ok", of3_python())]
        except Exception as exc:  # noqa: BLE001 - MissingDependencyError names the fix
            return [("openfold3", "environment", "optional", str(exc))]

    def check(self) -> None:
        base, _, option = self.preset.partition("+")
        if base not in PRESETS:
            raise ConfigError(f"unknown preset {base!r}; OpenFold3 presets are "
                              f"{', '.join(PRESETS)}")
        if option:
            raise ConfigError(f"unknown preset option {option!r} for {base} (OpenFold3 has "
                              "no option presets)")
        self.configuration, self.samples = PRESETS[base]

    # OpenFold3 reads template hits as Stockholm (hmmsearch's, its StoParser), A3M or M8, not
    # HHsearch's .hhr: the hmmsearch route against pdb_seqres, as AlphaFold3 searches
    template_routes = ("hmmsearch",)

    # -- inputs -----------------------------------------------------------------------------
    def uses_templates(self, requested: bool | None = None) -> bool:
        # OpenFold3 was trained with templates (its predict default use_templates: true), so
        # --templates auto means on when template databases are configured, as for OpenFold's
        # template presets (eksfold.templates.settings.plan)
        return True if requested is None else bool(requested)

    def inputs(self, templates: bool | None = None) -> AlignInputs:
        # OpenFold3 pairs MSAs itself, by species, from each chain's uniprot_hits (UniProt
        # headers): the align stage searches the uniprot database for heteromers
        # (eksfold.alignment.pairing). Templates: each protein entity's hmm_output.sto.
        # RNA chains: nhmmer against the rfam database (eksfold.alignment.rna), rfam_hits.a3m.
        return AlignInputs(msas=("uniref90", "mgnify", "bfd", "small_bfd"), paired_msas=True,
                           rna_msas=("rfam",),
                           template_hits=("pdb_seqres",) if self.uses_templates(templates)
                           else ())

    # -- the network ------------------------------------------------------------------------
    def load(self, config):
        from .folder import OpenFold3Folder

        return OpenFold3Folder(self, config).load()

    def attach_templates(self, folder, run_config) -> None:
        """OpenFold3's template preprocessor settings for the run's template database
        (:func:`.settings.template_settings`), sent with every query; nothing when the run
        uses no templates."""
        from ...templates.settings import plan
        from .settings import template_settings

        decided = plan(run_config)
        folder.templates = (template_settings(run_config.databases.template_mmcif_dir,
                                              run_config.templates.max_template_date)
                            if decided.active else None)

    def templates_per_fold(self, folder) -> int:
        # OpenFold3's inference featuriser takes the top n_templates (4) kept per chain
        if getattr(folder, "templates", None) is None:
            return 0
        return N_TEMPLATES

    def ladder(self, device_type: str = "cpu", names=None) -> list[SettingInfo]:
        """OpenFold3's own presets, fastest first (:data:`.settings.LADDER`): ``predict``,
        ``low_mem``, ``lma``; switched per query on the warm runner's loaded network.
        ``openfold3`` (the network as built, no fallback) is not a rung. ``low_mem`` is
        left out on a CPU with one diffusion sample: its offloading moves tensors to host
        memory, where they are already, and its per-sample heads and metrics only differ with
        several samples, so there it would be a rung that lowers nothing (read from
        OpenFold3's code; the CPU sweep measured predict and lma only)."""
        from .settings import LADDER

        return [SettingInfo(s.name, s.description, s.low_memory) for s in LADDER
                if (names is None or s.name in names)
                and not (s.name == "low_mem" and device_type == "cpu"
                         and getattr(self, "samples", 1) == 1)]

    def measure_point(self, length: int, setting: str, preset: str, **options) -> dict:
        from .measure import measure_point

        return measure_point(length, setting, preset, **options)

    def measure_series(self, lengths, setting: str, preset: str, **options) -> list[dict]:
        """The sweep's points of one setting folded by one warm runner (``eksfold bench
        settings --warm``): the peak measured is the runner child's, per query."""
        from .measure import measure_series

        return measure_series(lengths, setting, preset, **options)

    # -- costs ------------------------------------------------------------------------------
    def predicted_seconds(self, length: int) -> float:
        """CPU seconds of one fold of ``length`` tokens on the reference machine (FACTS)."""
        seconds, tokens, power = CPU_FULL
        full = seconds * (max(length, 1) / tokens) ** power * self.samples ** 0.5
        return full if self.configuration == "full" else 8.0 + full / 10.0

    gpu_reference = "H100"   # the GPU gpu_seconds describes (the planner's price table)

    @staticmethod
    def gpu_seconds(length: int) -> float:
        """One H100, NVIDIA's OpenFold3 NIM figures (what a GPU run still has to confirm)."""
        seconds, tokens, power = H100
        return seconds * (max(length, 1) / tokens) ** power

    def resources(self, length: int) -> tuple[float, float, int]:
        # 4.3 GB at 51 tokens on CPU (full); the pair representation grows with tokens^2 and
        # the NIM folds 1,869 tokens on an 80 GB H100
        if length <= 500:
            return (4, 16, 1)
        return (8, 32, 1) if length <= 2000 else (8, 64, 1)

    def prepare_targets(self, targets: list, errors: list) -> list:
        """Ligands checked with RDKit and the CCD in ``.venv-of3`` (one process for the run):
        an invalid SMILES or unknown CCD code refuses its target (target, chain, value named);
        the others get their token count (polymer residues + ligand heavy atoms)."""
        import dataclasses

        from .chemistry import ligand_report
        from .complex import ComplexInputError, ComplexTarget

        complexes = {t.id: ComplexTarget.from_dict({k: v for k, v in t.complex.items()
                                                    if k != "tokens"})
                     for t in targets if t.complex is not None}
        report = ligand_report(list(complexes.values()))
        bad, atoms = {}, {}
        for item in report:
            if item["problem"]:
                bad.setdefault(item["target"], ComplexInputError(item["target"], item["chain"],
                                                                 item["problem"]))
            else:
                atoms[item["target"]] = atoms.get(item["target"], 0) + item["atoms"] * (
                    item["chain"].count(",") + 1)   # every copy of the ligand
        errors.extend(bad.values())
        out = []
        for t in targets:
            if t.id in bad:
                continue
            if t.id in complexes:
                tokens = complexes[t.id].polymer_residues + atoms.get(t.id, 0)
                t = dataclasses.replace(t, complex={**t.complex, "tokens": tokens})
            out.append(t)
        return out

    # -- refusal ----------------------------------------------------------------------------
    def refuse(self, target) -> str | None:
        if target.complex is not None:
            return None   # checked chain by chain when it was read
        odd = sorted(set(target.sequence) - ALPHABETS["protein"])
        if odd:
            return (f"preset {self.preset} (openfold3) reads the 20 amino acids and X; the "
                    f"sequence holds {''.join(odd)!r}")
        return None
