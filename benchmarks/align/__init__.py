"""The jackhmmer-vs-MMseqs2 comparison: one module per part.

``compare`` (padding, queries, fits, shared helpers), ``sizes`` (both tools per database size),
``batch`` (MMseqs2's per-batch and per-query costs), ``stages`` (prefilter vs alignment),
``repeats`` (both tools in turns: the ratio's spread), ``grow`` (adding a size to a committed
comparison), ``plot``; ``__main__`` is the command line.
"""
