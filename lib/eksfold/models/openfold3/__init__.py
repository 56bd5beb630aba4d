"""OpenFold3 back end: complexes of proteins, RNA, DNA, ligands and ions (issue 24).

OpenFold3 needs numpy 2 and biotite >= 1, which OpenFold 0.0.1's pins exclude, so it lives in
its own environment ``.venv-of3`` (``mk/openfold3.mk``). The modules here split along that line:

- main environment (stdlib, Biopython, gemmi): :mod:`.complex` (the complex-target record and
  its OpenFold3 query), :mod:`.inputs` (ColabFold ``A:B`` FASTA, OpenFold3 and AlphaFold3 JSON),
  :mod:`.settings` (runner settings), :mod:`.environment` (locating ``.venv-of3`` and running
  code there), :mod:`.outputs` (verifying and ranking what a query wrote);
- ``.venv-of3`` only (torch, openfold3, rdkit, biotite): :mod:`.chemistry` (SMILES and CCD
  checks), :mod:`.checkpoint` (seeded random checkpoints, labelled UNTRAINED), :mod:`.runner`
  (the warm runner: network built and weights loaded once, then many queries).

Nothing here imports torch or openfold3 at import time, and nothing imports the main
environment's OpenFold code, so every module can be imported in either environment.
"""
