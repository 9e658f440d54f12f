"""Exchange studies (SPEC §3–§4): layers, chalcohalide, alloy; parallel with Dask, cached in the store."""

from halex.report import write_report
from halex.studies.energies import exchange_energy, pbx2_molecule, pbx2_reference
from halex.studies.exchange import (
    Study,
    StudySettings,
    all_studies,
    alloy_study,
    chalcohalide_study,
    layers_study,
    standalone_perovskite,
)
from halex.studies.output import write_study

__all__ = [
    "Study",
    "StudySettings",
    "all_studies",
    "alloy_study",
    "chalcohalide_study",
    "layers_study",
    "standalone_perovskite",
    "exchange_energy",
    "pbx2_molecule",
    "pbx2_reference",
    "write_report",
    "write_study",
]
