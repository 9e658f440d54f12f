"""STEM: read images, simulate them from models, fit atomic columns, index sublattices and
measure lattice parameters, tilt and halide identity (SPEC §5).

Image libraries (tifffile, scikit-image, scikit-learn, RosettaSciIO) are imported lazily;
install them with ``pip install 'halex[stem]'`` (``[stem-io]`` for DM3/DM4/EMD).
"""

from halex.stem.fit import ColumnFit, cramer_rao_bound, find_columns, fit_columns, refine_columns
from halex.stem.io import StemImage, read_image, write_image
from halex.stem.lattice import classify_halides, index_columns, measure
from halex.stem.simulate import SimulationSettings, project_columns, simulate_image

__all__ = [
    "StemImage", "read_image", "write_image", "SimulationSettings", "project_columns", "simulate_image",
    "ColumnFit", "cramer_rao_bound", "find_columns", "fit_columns", "refine_columns",
    "classify_halides", "index_columns", "measure",
]
