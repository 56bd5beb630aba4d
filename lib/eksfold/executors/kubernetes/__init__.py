"""The Kubernetes executor: shards of targets as (Indexed) Jobs on EKS.

:mod:`.executor` (the executor's hooks and Job submission), :mod:`.batching` (launches ->
shards -> submissions), :mod:`.observe` (Job/Pod states -> unit events), :mod:`.retry`
(the failure policy where the server has none), :mod:`.admin` (run_jobs, cancel_run,
unit_failure, resubmit from any session).
"""
from .executor import KubernetesExecutor  # noqa: F401
