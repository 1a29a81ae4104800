"""The run folder on disk: its layout, its metric files and log, reading it back, loggers.

Light at import (no torch, no matplotlib): listings, the sweep summary and `--help` read run
folders while nothing else is loaded. `layout` is the one module that names the files.
"""
