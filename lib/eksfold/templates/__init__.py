"""Templates: structures of related PDB chains that OpenFold's template stack reads.

Three concerns, one module each:

- :mod:`.standin` builds a real, small template database (mmCIF files written with gemmi, a
  ``pdb_seqres.txt``, a PDB70-style HH-suite database made with HH-suite's tools) from reference
  structures, for the tests and the demo; the catalogue (:mod:`eksfold.data.databases`) names
  the full-size ones.
- :mod:`.search` finds template hits for one target in the align stage, as OpenFold and
  AlphaFold do: HHsearch of the MSA against PDB70 (``pdb70_hits.hhr``) or hmmbuild + hmmsearch
  against ``pdb_seqres`` (``hmm_output.sto``). Hits are unit outputs like the MSAs.
- :mod:`.featurize` turns hits into OpenFold's template features with OpenFold's own
  ``TemplateHitFeaturizer`` (date cut-off, obsolete entries, kalign realignment, max templates),
  recording which hits were used and why the others were not.

:mod:`.hits` reads hit files (OpenFold's ``parse_hhr``; Biopython's Stockholm reader) and
:mod:`.settings` decides whether a run uses templates at all.
"""
