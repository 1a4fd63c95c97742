"""Executors: the only code that knows about parallelism, files and resumption.

``local`` runs a stage with worker processes on this machine (the default).
"""
