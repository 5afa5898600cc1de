"""The benchmarks: speed and memory targets checked against peers measured in the same run.

Each experiment is a script with its own command line (see its docstring; the mirror must be
running for all but ``mirror.py``)::

    .venv/bin/python benchmarks/ndvi.py       # NDVI, serial vs Dask threads vs distributed
    .venv/bin/python benchmarks/chips.py      # chip index and reads vs stacchip and rioxarray
    .venv/bin/python benchmarks/archive.py    # index_archive serial vs 1 and 2 Dask workers, resume
    python3 benchmarks/batching.py --setup    # once: torchgeo/xbatcher's venv
    .venv/bin/python benchmarks/batching.py   # DataLoader batches vs torchgeo and xbatcher
    .venv/bin/python benchmarks/inference.py  # read, forward, stitch a whole item
    .venv/bin/python benchmarks/memory.py     # every chapter's peak RSS against Binder's budget
    .venv/bin/python benchmarks/cells.py      # the slowest cells on Binder's one CPU (target 10 s)
    .venv/bin/python benchmarks/mirror.py     # the mirror's cold/warm start and search latency

Shared parts: :mod:`cases` runs one case in a fresh process (cold caches, its own peak RSS)
and measures peak RSS; :mod:`peers` makes the git-ignored venvs of peers whose pins clash
with ours. Every experiment that times a grid of cases describes one case with a frozen
dataclass (``NdviCase``, ``ChipsCase``, ``ArchiveCase``, ``BatchingCase``, ``InferenceCase``)
and keys its results by it; medians over ``--runs`` fresh processes are reported. The
scripts import their shared modules as siblings (this folder is on ``sys.path`` when a
script runs), so every command line above works from the repository root.
"""
