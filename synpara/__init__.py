"""synpara: build paralinguistic speech corpora with exact event timestamps.

Heavy libraries (torch, lhotse, models) are imported inside functions, never here.
"""

__version__ = "0.1.0"
