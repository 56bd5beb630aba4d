"""Former home of the alignment stage; kept until the MMseqs2 work moves (see eksfold.alignment)."""
from .alignment.hhsuite import HHblits  # noqa: F401
from .alignment.hmmer import Jackhmmer  # noqa: F401
from .alignment.msa import check_alignments, msa_depth, read_msa_sequences, truncate_stockholm  # noqa: F401
from .alignment.tools import ToolRun, run_tool  # noqa: F401
from .stages.align import align_target  # noqa: F401
