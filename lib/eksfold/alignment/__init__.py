"""Multiple sequence alignments: the programs that build them and the files they produce.

One module per concern: the external programs (jackhmmer, hhblits, mmseqs) as small tool
classes with one lifecycle, MSA files (reading, depth, checks), and the MSA cache.
"""
