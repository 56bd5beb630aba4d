"""python -m eksfold.checks [DATABASE]: the local checks as a table; exit 1 if something is missing."""
import sys

from . import local_checks, problems

t = local_checks(sys.argv[1] if len(sys.argv) > 1 else None)
print(t.to_string(index=False))
sys.exit(1 if problems(t) else 0)
