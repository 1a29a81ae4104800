"""gdrun's configs, shipped as a package so that Hydra finds them as pkg://gdrun.conf."""
