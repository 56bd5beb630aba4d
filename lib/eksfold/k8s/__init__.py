"""Kubernetes support: shared names, Job manifest builders and client configuration.

``names`` holds the names ``cluster/`` must match; ``jobs`` builds Job manifests as plain dicts
(pure functions, validated against the Kubernetes schema in tests); ``client`` loads the API
configuration (in-cluster service account inside a Pod, kubeconfig elsewhere).
"""
