"""gdrun's own Hydra launcher and sweeper: the defaults of `gdrun -m` (conf/hydra/default.yaml).

config.py puts them in Hydra's ConfigStore (hydra/launcher=gdrun, hydra/sweeper=gdrun),
gdrun_launcher.py holds the two plugin classes, _core.py the launcher's work, _compose.py the
composition of each job's config. Hydra imports the modules without a leading underscore at every
start, to find its plugins: they stay light.
"""
