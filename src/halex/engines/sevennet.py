"""SevenNet universal potentials whose weights ship inside the ``sevenn`` wheel (optional extra).

Two models are registered by name, both trained on PBE(+U) data and loaded with no network:

``7net-0``
    SevenNet-0 (11 July 2024), trained on MPtrj, the same data set as CHGNet 0.3.0 but a
    different architecture (an E(3)-equivariant NequIP-type network).
``7net-mf-0``
    SevenNet-MF-0, multi-fidelity; halex uses its ``PBE`` head (the source study's functional).

halex uses them to rescore exchange studies (``halex study … --rescore 7net-0 7net-mf-0``):
single points on the geometries the study engine relaxed, so every ΔE gets a spread over
engines. Measured on this project's 2-core machine they cost 3.8–6.5× CHGNet per call
(``benchmarks/results/bench_rescore.md``; :meth:`SevenNetEngine.cost`). SevenNet is MIT-licensed.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

from ase.calculators.calculator import BaseCalculator
from ase.data import chemical_symbols

from halex.engines.base import Cost, Engine, is_heavy
from halex.errors import EngineUnavailableError, InputError

__all__ = ["SevenNetEngine", "SevenNetMFEngine"]


class SevenNetEngine(Engine):
    """SevenNet-0 through its ASE calculator.

    Settings
    --------
    model : str
        A pretrained model shipped in the wheel (``"7net-0"``).
    modal : str or None
        Fidelity head of a multi-fidelity model (None for single-fidelity ones).
    device : str
        ``"cpu"`` or ``"cuda"``.
    """

    name = "7net-0"
    defaults: dict[str, Any] = {"model": "7net-0", "modal": None, "device": "cpu"}
    #: models whose weights ship inside sevenn 0.13 (others are downloaded at run time: refused)
    SHIPPED = ("7net-0", "7net-mf-0", "7net-l3i5")

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self._settings["model"] not in self.SHIPPED:
            raise InputError(f"SevenNet model {self._settings['model']!r} is not shipped in the sevenn wheel "
                             f"(it would be downloaded); choose one of {', '.join(self.SHIPPED)}")
        if self._settings["device"] not in ("cpu", "cuda"):
            raise InputError(f"device must be 'cpu' or 'cuda', got {self._settings['device']!r}")
        self._calc = None

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (sent to a Dask worker) without the loaded model: the worker loads its own."""
        return {**self.__dict__, "_calc": None}

    def _new(self, model):
        with warnings.catch_warnings():
            # "No tensor product accelerator is enabled": the accelerators are CUDA-only;
            # "torch.jit.script is deprecated": PyTorch's note on e3nn's compiled kernels
            warnings.filterwarnings("ignore", message="No tensor product accelerator")
            warnings.filterwarnings("ignore", message="`torch.jit.script` is deprecated", category=DeprecationWarning)
            try:
                from sevenn.calculator import SevenNetCalculator
            except ImportError as exc:
                raise EngineUnavailableError(f"the {self.name!r} engine needs the sevenn package ({exc}): "
                                             "pip install -e '.[sevennet]'") from None
            return SevenNetCalculator(model, file_type="checkpoint" if isinstance(model, str) else "model_instance",
                                      device=self._settings["device"], modal=self._settings["modal"])

    def _load(self):
        """The first calculator, which loads the weights; later calculators share its network."""
        if self._calc is None:
            self._calc = self._new(self._settings["model"])
        return self._calc

    @property
    def version(self) -> str:
        import sevenn

        modal = self._settings["modal"]
        return f"sevenn {sevenn.__version__}, model {self._settings['model']}" + (f" ({modal})" if modal else "")

    @property
    def supported_elements(self) -> frozenset[str]:
        return frozenset(chemical_symbols[z] for z in self._load().type_map)

    def cost(self, atoms) -> Cost:
        """Cost of one energy + forces call on 2 cores: 3.5 ms and 4 MB per atom, 0.6 GB to start.

        Measured by ``benchmarks/bench_rescore.py`` (``benchmarks/results/bench_rescore.md``) on
        heterostructures of 108–729 atoms: 1.7–3.1 ms per atom, peak 0.65–1.9 GB; the line errs
        towards the larger side there.
        """
        n = len(atoms)
        seconds, memory = 3.5e-3 * n, 0.6 + 4.0e-3 * n
        return Cost(seconds=seconds, memory_GB=memory, detail=f"{n} atoms", heavy=is_heavy(seconds, memory))

    def calculator(self, directory: str | Path | None = None) -> BaseCalculator:
        return self._new(self._load().model)


class SevenNetMFEngine(SevenNetEngine):
    """SevenNet-MF-0 with its PBE head (settings as :class:`SevenNetEngine`)."""

    name = "7net-mf-0"
    defaults: dict[str, Any] = {"model": "7net-mf-0", "modal": "PBE", "device": "cpu"}
