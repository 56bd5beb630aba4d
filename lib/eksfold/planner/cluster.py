"""Cluster descriptions for the planner: node pools with instance facts, prices and limits.

:func:`eksfold.planner.karpenter.default_cluster` reads the Karpenter NodePools in
``cluster/karpenter/nodepools.yaml`` (their requirements, limits, capacity types and
consolidation delays) and picks, for each pool,
the instance type of the shipped price table (``planner/prices.yaml``, source and date stated
there) that Karpenter would most likely launch: among the types the pool's requirements allow,
the cheapest per Pod of the pool's size class. :func:`load_cluster` reads a user-written YAML::

    name: my-cluster
    pools:
      - {name: cpu, stage: align, instance: r6i.8xlarge, vcpu: 32, memory_gib: 256,
         price: 2.016, spot_price: 0.70, max_nodes: 8}
      - {name: gpu, stage: infer, gpu_class: standard, instance: g6.4xlarge, vcpu: 16,
         memory_gib: 64, gpu: L4, gpu_count: 1, gpu_memory_gb: 24, price: 1.3232, max_nodes: 8}
    always_on_per_hour: 0.8
"""
from __future__ import annotations

import dataclasses
import functools
import os
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ..errors import ConfigError

PRICES = Path(__file__).with_name("prices.yaml")
CLUSTER_DIR = Path(os.environ.get("EKSFOLD_CLUSTER_DIR",
                                  Path(__file__).resolve().parents[3] / "cluster"))
# What a node keeps for itself (kubelet, system daemons, eviction threshold): an approximation
# of EKS AL2023's kube-reserved, so that an 8-vCPU Pod does not "fit" an 8-vCPU node.
RESERVED_CPU, RESERVED_MEM_FRACTION, RESERVED_MEM_GIB = 0.2, 0.08, 0.5


@dataclass
class NodePool:
    """One node pool planned with one instance type."""

    name: str
    stage: str                       # the stage whose Pods run here ("align", "infer", ...)
    instance: str
    vcpu: float
    memory_gib: float
    price: float                     # on-demand $/h
    spot_price: float | None = None  # None: the pool runs on-demand only
    gpu: str | None = None
    gpu_count: int = 0
    gpu_memory_gb: float = 0.0
    gpu_speed: float | None = None   # inference speed relative to the profile's GPU (override)
    gpu_class: str | None = None     # eksfold.io/gpu-class of GPU pools
    min_nodes: int = 0
    max_nodes: int = 1
    consolidate_after_s: float = 0.0
    candidates: tuple = ()           # the instance types the pool's requirements allow
    variants: tuple = ()             # those types as NodePools: for Pods the main type can't hold
    choice: str = ""                 # why this instance type (e.g. lowest cost per structure)
    weight: int = 0                  # Karpenter's NodePool weight: the highest that fits is used

    @property
    def alloc_cpu(self) -> float:
        return self.vcpu - RESERVED_CPU

    @property
    def alloc_mem_gib(self) -> float:
        return self.memory_gib * (1 - RESERVED_MEM_FRACTION) - RESERVED_MEM_GIB

    def fits(self, cpu: float, mem_gib: float, gpu: int = 0) -> bool:
        eps = 1e-9
        return cpu <= self.alloc_cpu + eps and mem_gib <= self.alloc_mem_gib + eps and \
            gpu <= self.gpu_count

    def slots(self, cpu: float, mem_gib: float, gpu: int = 0) -> int:
        """How many Pods with these requests one node holds."""
        if not self.fits(cpu, mem_gib, gpu):
            return 0
        n = min(int((self.alloc_cpu + 1e-9) // cpu) if cpu else 10**6,
                int((self.alloc_mem_gib + 1e-9) // mem_gib) if mem_gib else 10**6)
        return min(n, self.gpu_count // gpu) if gpu else n

    def hourly(self, spot: bool) -> float:
        return self.spot_price if spot and self.spot_price is not None else self.price


@dataclass
class ClusterSpec:
    name: str
    pools: list[NodePool]
    always_on_per_hour: float = 0.0
    source: str = ""
    local: bool = False              # the local machine: warm workers, no nodes to start
    workers: dict = field(default_factory=dict)   # local: workers per stage
    # spot reclaims per node-hour (an assumption, planner/prices.yaml): the plan prices the
    # rework they cause on spot nodes (a unit of T hours: rate * T^2 / 2 node-hours on average)
    spot_interruptions_per_hour: float = 0.0

    def pools_for(self, stage: str) -> list[NodePool]:
        return [p for p in self.pools if p.stage == stage]

    def scaled(self, **max_nodes: int) -> "ClusterSpec":
        """A copy with other node limits per pool name (the search's candidates)."""
        pools = [dataclasses.replace(p, max_nodes=max_nodes.get(p.name, p.max_nodes))
                 for p in self.pools]
        return dataclasses.replace(self, pools=pools)

    def describe(self) -> str:
        lines = [f"cluster {self.name} ({self.source})"]
        for p in self.pools:
            gpu = f", {p.gpu_count}x {p.gpu} {p.gpu_memory_gb:g} GB" if p.gpu else ""
            spot = f", spot ${p.spot_price:.3f}/h" if p.spot_price is not None else ", on-demand only"
            lines.append(f"  {p.name:20s} {p.stage:6s} {p.instance:12s} {p.vcpu:g} vCPU, "
                         f"{p.memory_gib:g} GiB{gpu}; ${p.price:.3f}/h{spot}; "
                         f"{p.min_nodes}-{p.max_nodes} nodes")
        return "\n".join(lines)


@functools.lru_cache(maxsize=8)
def _read_table(path: str) -> dict:
    return yaml.safe_load(Path(path).read_text())


def price_table(path: Path = PRICES) -> dict:
    return _read_table(str(path))


FIELDS = {f.name for f in dataclasses.fields(NodePool)}


def load_cluster(path) -> ClusterSpec:
    """A user-written cluster YAML (module docstring); errors name the file and the field."""
    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"cluster file {path} not found") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"cluster file {path}: not valid YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("pools"), list) or not doc["pools"]:
        raise ConfigError(f"cluster file {path}: expected a mapping with a non-empty 'pools' list")
    pools = []
    for i, entry in enumerate(doc["pools"]):
        where = f"cluster file {path}, pool {i + 1}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: expected a mapping")
        unknown = set(entry) - FIELDS
        if unknown:
            raise ConfigError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}")
        missing = {"name", "stage", "instance", "vcpu", "memory_gib", "price"} - set(entry)
        if missing:
            raise ConfigError(f"{where}: missing field(s) {', '.join(sorted(missing))}")
        try:
            pool = NodePool(**entry)
            for num in ("vcpu", "memory_gib", "price", "max_nodes", "gpu_count"):
                if float(getattr(pool, num)) < 0:
                    raise ValueError(f"{num} must not be negative")
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where} ({entry.get('name')}): {exc}") from None
        pools.append(pool)
    return ClusterSpec(doc.get("name", path.stem), pools, float(doc.get("always_on_per_hour", 0)),
                       str(path), spot_interruptions_per_hour=float(
                           doc.get("spot_interruptions_per_hour", 0)))


def local_cluster(align_workers: int = 1, infer_workers: int = 1, relax_workers: int = 1,
                  vcpu: int | None = None) -> ClusterSpec:
    """This machine as a one-node cluster run by the local executor (no price: $0/h)."""
    vcpu = vcpu or os.cpu_count() or 1
    pools = [NodePool("local", stage, "this machine", vcpu, 0.0, 0.0, max_nodes=1)
             for stage in ("align", "infer", "relax")]
    return ClusterSpec("local", pools, local=True,
                       workers={"align": align_workers, "infer": infer_workers,
                                "relax": relax_workers}, source="this machine, local executor")
