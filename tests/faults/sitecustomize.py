"""Fault injection at start-up for processes started with this folder on PYTHONPATH (see inject.py):
GDRUN_FAULT_KILL=N:before|after kills at the N-th file publication, GDRUN_FAULT_TRACE=FILE lists them."""

import os

if os.environ.get("GDRUN_FAULT_KILL") or os.environ.get("GDRUN_FAULT_TRACE"):
    from inject import install

    install(os.environ.get("GDRUN_FAULT_KILL"), os.environ.get("GDRUN_FAULT_TRACE"))
