"""Kubernetes support: shared names, Job manifest builders, status reading, client configuration.

``names`` holds the names ``cluster/`` must match; ``jobs`` builds Job manifests as plain dicts
(pure functions, validated against the Kubernetes schema in tests); ``status`` turns Jobs and
Pods into unit states; ``client`` loads the API configuration (in-cluster service account inside
a Pod, kubeconfig elsewhere). The executor itself is :mod:`eksfold.executors.kubernetes`.

Pointing a run at an EKS cluster (built with ``cluster/``):

1. Configuration: in a JupyterHub notebook on the cluster nothing is needed (the Pod's
   ``eksfold-notebook`` service account and namespace are used). On a laptop:
   ``aws eks update-kubeconfig --name <cluster>`` and, if the context has no namespace,
   ``kubectl config set-context --current --namespace eksfold``.
2. The run root must be visible to the worker Pods: ``/fsx/runs/<name>`` on the shared FSx
   volume (where a notebook mounts it), or ``s3://<bucket>/runs/<name>``. A machine that mounts
   the volume elsewhere passes ``volume_root=<its mount point>``.
3. Run, with the worker image pushed to ECR (or ``$EKSFOLD_IMAGE`` set once)::

       eksfold.run_pipeline("targets.fasta", "/fsx/runs/cameo", executor="kubernetes",
                            executor_options={"image": "<acct>.dkr.ecr.<region>.amazonaws.com/"
                                              "eksfold-worker:<tag>", "kueue": True})

   or ``EKSFOLD_IMAGE=... eksfold run targets.fasta --root /fsx/runs/cameo --executor kubernetes``.
   Alignment units go to the ``eksfold-align`` pool, inference to ``eksfold-infer`` (long targets
   to the ``large`` GPU class); progress shows per target as with the local executor.
4. After failures: ``KubernetesExecutor().unit_failure(run, "infer", target_id)`` gives the exit
   code, Kubernetes' reason (e.g. ``unschedulable: 0/3 nodes are available: 3 Insufficient
   nvidia.com/gpu``) and the log tail; ``resubmit(run)`` reruns only failed or missing units;
   ``cancel_run(run)`` deletes the run's unfinished Jobs from any session.
"""
