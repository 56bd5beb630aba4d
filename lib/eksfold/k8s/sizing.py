"""What a unit's Pod asks for: size classes by stage and sequence length.

A batch holds targets of one size class only, so every Pod of a Job gets the same requests.
Stages without a class table here get theirs from the stage class's resource hint.

>>> Sizing().for_length("infer", 1800).gpu_class
'large'
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace

from ..stages import get_stage
from . import names


@dataclass(frozen=True)
class Resources:
    """Requests/limits of one unit's container; quantities are strings, as the API wants."""

    size: str                   # size-class name, part of the batch name ("small", "large", ...)
    cpu: str
    memory: str
    gpu: int = 0
    shm: str = "1Gi"            # emptyDir (medium Memory) at /dev/shm; PyTorch workers use it
    tmp: str = "20Gi"           # emptyDir at /tmp (read-only root filesystem): scratch, caches
    gpu_class: str | None = None
    low_memory: bool = False    # run inference with the low-memory settings (chunking, LMA)

    def requirements(self) -> dict:
        # Memory limit == request (an OOM is a clear, per-unit failure); no CPU limit (no
        # throttling of alignment tools that briefly use more threads than requested).
        requests = {"cpu": self.cpu, "memory": self.memory}
        limits = {"memory": self.memory}
        if self.gpu:
            requests[names.GPU_RESOURCE] = str(self.gpu)
            limits[names.GPU_RESOURCE] = str(self.gpu)
        return {"requests": requests, "limits": limits}


@dataclass(frozen=True)
class SizeClass:
    max_length: int | None      # None: no upper bound
    resources: Resources


def _default_classes() -> dict[str, tuple[SizeClass, ...]]:
    # Alignment: jackhmmer/hhblits memory grows with the database chunking and query length.
    # Inference: OpenFold activation memory grows ~L^2 (pair stack); above ~1000 residues a
    # 24 GB GPU runs out, above ~2500 even an 80 GB one needs chunked/low-memory attention.
    return {
        # 7.5 CPUs, not 8: a node's allocatable CPU is its vCPUs less ~0.2 (kubelet, daemons),
        # so 8-CPU Pods leave a quarter of a 32-vCPU node idle (3 Pods) and none fit 8 vCPUs;
        # the tools still run their configured threads (no CPU limit).
        "align": (
            SizeClass(1000, Resources("std", cpu="7.5", memory="16Gi", shm="1Gi")),
            SizeClass(None, Resources("long", cpu="7.5", memory="32Gi", shm="1Gi")),
        ),
        "infer": (
            # host memory, measured (eksfold bench hostmem, profiles/cpu-2core/infer-host-
            # memory.csv): OpenFold's feature pipeline peaks at 7.7 GB for 1,000 residues x
            # 30,000 MSA rows (~0.22 KB per residue-row), the weights add 0.45 GB; + 3 GiB
            # for CUDA (assumed) + 25 % = 13.7 GiB. 24Gi leaves room for ~60,000 rows and fits
            # the 32 GiB 2xlarge GPU nodes, cheaper per structure than the 4xlarge ones.
            # Up to 800 residues, 30,000 rows (the deepest MSA measured) need (the 800-residue
            # line of the same fit: ~6.2 GB + 0.45 GB + 3 GiB) x 1.25 = 12 GiB: the Pod fits the
            # 16 GiB xlarge nodes (4 vCPUs, ~14 GiB allocatable), the same GPU for ~17 % less
            # per hour (g5.xlarge). A deeper MSA that outgrows it gets its Pod OOMKilled and
            # the retry takes the next class (Batcher.unit_resources).
            SizeClass(800, Resources("small", cpu="3", memory="12Gi", gpu=1, shm="4Gi",
                                     gpu_class="standard")),
            SizeClass(1000, Resources("std", cpu="4", memory="24Gi", gpu=1, shm="8Gi",
                                      gpu_class="standard")),
            # 2,500 residues x 30,000 rows: ~16.5 GB of features at the measured rate; 40Gi
            # and 6 CPUs fit the 8-vCPU, 64 GiB g6e.2xlarge
            SizeClass(2500, Resources("large", cpu="6", memory="40Gi", gpu=1, shm="16Gi",
                                      gpu_class="large")),
            SizeClass(None, Resources("xlarge", cpu="8", memory="120Gi", gpu=1, shm="16Gi",
                                      gpu_class="large", low_memory=True)),
        ),
        "relax": (
            SizeClass(1000, Resources("std", cpu="2", memory="8Gi", shm="1Gi")),
            SizeClass(None, Resources("long", cpu="4", memory="16Gi", shm="1Gi")),
        ),
    }


@dataclass
class Sizing:
    """Per-stage size classes ordered by ``max_length``; the first that fits a length wins.

    With ``gpu_model`` (a CUDA cost model from a GPU settings profile, :mod:`eksfold.memory`)
    inference is routed by predicted memory instead: the smallest GPU class whose memory fits
    the target with some setting, the Pod's memory request from the predicted host peak, and
    OpenFold's low-memory settings when only those fit. Without a GPU profile the length
    thresholds below apply (they came from published OpenFold runs, not from this project).
    """

    classes: dict[str, tuple[SizeClass, ...]] = field(default_factory=_default_classes)
    gpu_model: object | None = None

    def for_length(self, stage: str, length: int, step_up: int = 0) -> Resources:
        """The first class that fits ``length``; ``step_up`` classes bigger for a unit whose
        Pod was OOMKilled that many times (its host memory outgrew the class: e.g. an MSA far
        deeper than the class allows for), the last class at most."""
        if stage == "infer" and self.gpu_model is not None:
            res = self._routed(length)
            if step_up:   # the predicted host peak was too low: double it per kill
                gib = int(res.memory.rstrip("Gi")) * 2 ** step_up
                res = replace(res, memory=f"{gib}Gi")
            return res
        if stage not in self.classes:   # a stage added later: its own resource hint
            cls = get_stage(stage)
            hint = cls.__new__(cls).resources(length)   # a hint needs no run (as the planner's)
            return Resources("std", cpu=str(hint.cpu), memory=f"{int(hint.memory_gb)}Gi",
                             gpu=hint.gpu, gpu_class="standard" if hint.gpu else None)
        classes = self.classes[stage]
        first = next((i for i, c in enumerate(classes)
                      if c.max_length is None or length <= c.max_length), len(classes) - 1)
        return classes[min(first + step_up, len(classes) - 1)].resources

    def _routed(self, length: int) -> Resources:
        from ..memory.chooser import gpu_class_for
        from ..models import get_backend

        route = gpu_class_for(length, self.gpu_model)   # TargetError when no class fits
        base = next(c.resources for c in self.classes["infer"]
                    if c.resources.gpu_class == route["gpu_class"])
        ladder = get_backend(getattr(self.gpu_model, "preset", None)).ladder("cuda")
        frugal = [s.name for s in ladder if s.low_memory]
        memory_gi = max(8, -(-route["memory_request_mb"] // 1024))
        return replace(base, size=route["gpu_class"], memory=f"{memory_gi}Gi",
                       low_memory=route["setting"] in frugal)

    def scaled(self, **overrides) -> "Sizing":
        """Every class with fields replaced (e.g. small requests for a test cluster)."""
        return Sizing({stage: tuple(SizeClass(c.max_length, replace(c.resources, **overrides))
                                    for c in classes)
                       for stage, classes in self.classes.items()}, self.gpu_model)
