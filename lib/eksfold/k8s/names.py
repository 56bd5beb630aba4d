"""Kubernetes names shared by the executor (``eksfold.k8s.jobs``) and ``cluster/``.

Defined once here; the manifests in ``cluster/`` must use the same values (a test checks).
"""
from ..contracts import TARGETS_ANNOTATION

NAMESPACE = "eksfold"
WORKER_SERVICE_ACCOUNT = "eksfold-worker"      # IRSA: read databases/weights, write runs
NOTEBOOK_SERVICE_ACCOUNT = "eksfold-notebook"  # JupyterHub single-user pods

PVC_NAME = "eksfold-fsx"                       # FSx for Lustre claim
MOUNT_PATH = "/fsx"                            # /fsx/db, /fsx/weights, /fsx/runs

POOL_LABEL = "eksfold.io/pool"                 # Karpenter NodePool names == label values
ALIGN_POOL = "eksfold-align"                   # CPU
INFER_POOL = "eksfold-infer"                   # GPU, tainted nvidia.com/gpu=true:NoSchedule
GPU_CLASS_LABEL = "eksfold.io/gpu-class"
GPU_CLASSES = ("standard", "large")
GPU_TAINT_KEY = "nvidia.com/gpu"
GPU_RESOURCE = "nvidia.com/gpu"

CPU_QUEUE = "eksfold-cpu"                      # Kueue LocalQueues
GPU_QUEUE = "eksfold-gpu"
QUEUE_LABEL = "kueue.x-k8s.io/queue-name"

DO_NOT_DISRUPT_ANNOTATION = "karpenter.sh/do-not-disrupt"

WORKER_IMAGE = "eksfold-worker"                # ECR repository name
WORKER_UID = 1000

# Labels the executor puts on its Jobs and Pods (selectors for watch/cancel/resubmit).
RUN_LABEL = "eksfold.io/run"
STAGE_LABEL = "eksfold.io/stage"
TARGET_ANNOTATION = TARGETS_ANNOTATION         # JSON list of shards (lists of ids), index order
APP_LABEL = "app.kubernetes.io/name"
APP_NAME = "eksfold"
