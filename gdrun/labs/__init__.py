"""The course labs: the notebooks' steps transcribed plainly (`notebooks`), compared with gdrun's runs (`compare`).

Off the core path: nothing in training or the run folder imports this package.
"""
