"""Set-up checks for this machine and for the EKS cluster, as tables (notebook 00).

Each check is a row ``(area, check, status, detail)`` with status ``ok``, ``missing``
(needed and absent), ``optional`` (absent, only some features need it), ``forbidden`` (the
Kubernetes identity may not read it) or ``info``. Nothing here changes anything.

>>> from eksfold import checks
>>> checks.local_checks("data/db/uniprot20k.fasta")           # doctest: +SKIP
>>> checks.cluster_checks()                                    # doctest: +SKIP
"""
from .cluster import cluster_checks  # noqa: F401
from .local import TOOLS, local_checks  # noqa: F401
from .rows import problems  # noqa: F401
