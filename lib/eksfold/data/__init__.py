"""Data a run needs that does not come with eksfold: weights, alignments, databases, references.

Everything here is one call away, resumable and verified:

- :mod:`.weights`     OpenFold parameters from ``s3://openfold/openfold_params/`` into a cache
                      (``resolve_weights("finetuning_ptm_2") -> Path``)
- :mod:`.alignments`  OpenFold's precomputed alignments for PDB chains (``s3://openfold/pdb/``)
- :mod:`.databases`   the sequence databases each alignment mode needs, and their download/unpack
- :mod:`.references`  experimental structures of PDB chains, for accuracy analysis
- :mod:`.transfer`    the resumable, checksum-verified download all of them use
- :mod:`.sources`     what it reads from: S3 objects (ranged If-Match GETs) and HTTP(S) URLs
- :mod:`.progress`    transfer progress bars (terminal and notebook)

The command line is ``eksfold data weights|alignments|databases|references ...``.
"""
