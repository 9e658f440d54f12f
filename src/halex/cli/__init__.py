"""The ``halex`` command line (thin layer over the Python API)."""
