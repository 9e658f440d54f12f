"""The embedded default engine: CHGNet, a universal ML interatomic potential.

Why CHGNet (see ``docs/engines.md``): its pretrained weights (model 0.3.0, trained on
the Materials Project PBE/PBE+U trajectory set MPtrj) ship inside the ``chgnet`` PyPI
wheel, so it loads with no network; it covers every element of the problem
(Cs, Pb, Cl, I, S; Z = 1–94); it is the fastest of the offline universal potentials
measured on this project's 2-core CPU machines (≈ 0.5 s per energy+forces call at
775 atoms, SevenNet-0 3–4× slower); and, being PBE-trained, it carries the same
systematic lattice overestimate as the PBE reference study (a(CsPbCl3) ≈ 5.74 Å).

Another model is one subclass away: implement :meth:`calculator` and register it with
:func:`halex.engines.register_engine`.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

from ase.calculators.calculator import BaseCalculator
from ase.data import chemical_symbols

from halex.engines.base import Cost, Engine, is_heavy
from halex.errors import EngineUnavailableError, InputError

__all__ = ["CHGNetEngine", "CHGNetTunedEngine"]


class CHGNetEngine(Engine):
    """CHGNet through its ASE calculator.

    Settings
    --------
    model : str
        Pretrained model version shipped with the package (``"0.3.0"``).
    device : str
        ``"cpu"`` or ``"cuda"``.
    threads : int or None
        PyTorch intra-op threads (None: PyTorch's default). Not a physical setting,
        but recorded.
    dispersion : str, optional
        ``"d3bj"``: add Grimme's D3 dispersion with Becke–Johnson damping and the PBE
        parameters (S. Grimme, S. Ehrlich, L. Goerigk, J. Comput. Chem. 32, 1456 (2011)),
        through the ``dftd3`` package (simple-DFT-D3, LGPL-3; extra ``dispersion``). CHGNet
        is fitted to PBE(+U), which has no dispersion, so the correction is added, not
        double counted. Absent: no correction (and the setting is not recorded, so earlier
        results keep their store keys).
    """

    name = "mlip"
    defaults = {"model": "0.3.0", "device": "cpu"}
    optional_settings = {"dispersion": ("d3bj",)}

    def __init__(self, **settings: Any) -> None:
        super().__init__(**settings)
        if self._settings["device"] not in ("cpu", "cuda", "mps"):
            raise InputError(f"device must be 'cpu', 'cuda' or 'mps', got {self._settings['device']!r}")
        self._model = None  # loaded on first use, owned by this engine instance

    def __getstate__(self) -> dict[str, Any]:
        """Pickled (sent to a Dask worker) without the loaded model: the worker loads its own."""
        return {**self.__dict__, "_model": None}

    def _load(self):
        if self._model is None:
            try:
                from chgnet.model import CHGNet
            except ImportError as exc:
                raise EngineUnavailableError(
                    f"the {self.name!r} engine needs the chgnet package ({exc}): pip install -e '.[mlip]'"
                ) from None
            with contextlib.redirect_stdout(io.StringIO()):
                self._model = self._read_model(CHGNet)
        return self._model

    def _read_model(self, CHGNet):  # noqa: N803 - the class, imported by _load
        """The model of the ``model`` setting: a pretrained one shipped with chgnet."""
        try:
            return CHGNet.load(model_name=self._settings["model"], verbose=False)
        except Exception as exc:  # unknown model names raise various errors
            raise EngineUnavailableError(f"cannot load CHGNet model {self._settings['model']!r}: {exc}") from None

    def _model_text(self) -> str:
        """The model part of :attr:`version`."""
        return f"model {self._settings['model']}"

    @property
    def version(self) -> str:
        import chgnet

        text = f"chgnet {chgnet.__version__}, {self._model_text()}"
        if self._settings.get("dispersion"):
            text += f", dftd3 {self._dftd3().__version__} D3(BJ)-PBE"
        return text

    @staticmethod
    def _dftd3():
        try:
            import dftd3
        except ImportError:
            raise EngineUnavailableError("dispersion 'd3bj' needs the dftd3 package: pip install 'halex[dispersion]'") from None
        return dftd3

    @property
    def supported_elements(self) -> frozenset[str]:
        # CHGNet's atom embedding and AtomRef cover atomic numbers 1..94
        return frozenset(chemical_symbols[1:95])

    def cost(self, atoms) -> Cost:
        """Cost of one energy + forces call, from ``benchmarks/results/bench_engine.md`` (2 cores).

        Measured there for CsPbCl3 nanocubes of 64–2,944 atoms: 0.5–1.1 ms per atom per
        call and a peak of 0.45 GB + 2.0 MB per atom; this model takes 1.0 ms per atom and
        that memory line, so it errs towards the larger side for the measured sizes.
        """
        n = len(atoms)
        return Cost(seconds=1.0e-3 * n, memory_GB=0.45 + 2.0e-3 * n, detail=f"{n} atoms",
                    heavy=is_heavy(1.0e-3 * n, 0.45 + 2.0e-3 * n))

    def calculator(self, directory: str | Path | None = None) -> BaseCalculator:
        from chgnet.model.dynamics import CHGNetCalculator

        class _CHGNetCalculator(CHGNetCalculator):
            """CHGNetCalculator without two warnings that say nothing about the result:
            PyTorch's 'tensor.detach()' note from inside CHGNet, and pymatgen's note that
            ASE constraints other than FixAtoms are dropped when CHGNet converts the
            structure (constraints do not enter an energy/force evaluation)."""

            def calculate(self, atoms=None, properties=None, system_changes=None, task=None):
                # only what is asked for: energy and forces, stress only when requested (a cell
                # relaxation), magnetic moments only when requested (CHGNet's default "efsm"
                # computes both every call)
                properties = properties or ["energy", "forces"]
                if task is None:
                    task = "ef" + ("s" if "stress" in properties else "") + ("m" if "magmoms" in properties else "")
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
                    warnings.filterwarnings("ignore", message="Only FixAtoms and FixCartesian is supported by Pymatgen")
                    return super().calculate(atoms, properties, system_changes, task=task)

        model = self._load()
        with contextlib.redirect_stdout(io.StringIO()):
            calc = _CHGNetCalculator(model=model, use_device=self._settings["device"], on_isolated_atoms="ignore")
        if not self._settings.get("dispersion"):
            return calc
        self._dftd3()
        from ase.calculators.mixing import SumCalculator
        from dftd3.ase import DFTD3

        return SumCalculator([calc, DFTD3(method="PBE", damping="d3bj")])


class CHGNetTunedEngine(CHGNetEngine):
    """CHGNet fine-tuned on the CP2K PBE exchange energies of the parity dataset (``mlip-tuned``).

    The weights ship in the package (:data:`halex.engines.tuning.TUNED_MODEL`, made by
    ``halex engines tune``, see :mod:`halex.engines.tuning`); the file also records the
    protocol, the digest of the dataset it was fitted to and its held-out parity.

    Settings
    --------
    model : str
        ``"cp2k-pbe-parity-1"``: the shipped weights; or the path of weights written by
        ``halex engines tune -o OUT`` (``OUT/mlip_tuned.pt``). The version string carries the file's SHA-256, so
        results of different weights never share a store key.
    device, threads, dispersion
        As :class:`CHGNetEngine`.
    """

    name = "mlip-tuned"
    SHIPPED = "cp2k-pbe-parity-1"
    defaults = {"model": SHIPPED, "device": "cpu"}

    def _path(self) -> Path:
        from halex.engines.tuning import TUNED_MODEL

        model = self._settings["model"]
        path = TUNED_MODEL if model == self.SHIPPED else Path(model)
        if not path.is_file():
            raise EngineUnavailableError(f"fine-tuned CHGNet weights not found: {path} (model {model!r}); "
                                         f"use {self.SHIPPED!r} or the mlip_tuned.pt written by 'halex engines tune -o OUT'")
        return path

    def _read_model(self, CHGNet):  # noqa: N803 - the class, imported by _load
        """The fine-tuned weights of the ``model`` setting."""
        try:
            return CHGNet.from_file(str(self._path()))
        except (KeyError, RuntimeError, EOFError, OSError) as exc:
            raise EngineUnavailableError(f"cannot load fine-tuned CHGNet weights {self._path()}: {exc}") from None

    def fitted_to(self) -> dict[str, Any]:
        """The metadata stored with the weights: protocol, dataset digest, held-out parity."""
        from halex.engines.tuning import read_metadata

        return read_metadata(self._path())

    def _model_text(self) -> str:
        import hashlib

        path = self._path()
        key = (str(path), path.stat().st_mtime_ns)
        if getattr(self, "_digest", (None,))[0] != key:  # hashed once per file, not per store lookup
            self._digest = (key, hashlib.sha256(path.read_bytes()).hexdigest()[:12])
        return f"model 0.3.0 fine-tuned {self._settings['model']} (sha256 {self._digest[1]})"
