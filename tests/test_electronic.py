"""Frontier orbitals per domain and band alignment (SPEC §4, electronic structure).

Fast tests check the analysis against a tight-binding model with known edges, the PDOS
reader against a real CP2K 2023.1 output (electron count and Mulliken sum rule) and the
bad-input paths; the slow ones run CP2K itself.
"""

import json

import numpy as np
import pytest

from conftest import DATA, needs_cp2k, run_cli
from halex.analysis.electronic import (
    alignment_table,
    band_edges,
    classify_alignment,
    domain_fractions,
    electronic_domains,
    frontier_character,
    projected_dos,
)
from halex.engines.orbitals import OrbitalSet
from halex.errors import AnalysisError, EngineUnavailableError, FileFormatError, InputError


def _tight_binding(levels: dict[str, tuple[float, float]], t: float = 0.02, n_occ_per_domain: int = 1) -> OrbitalSet:
    """Two-level sites per domain (VB, CB energies in eV), all coupled by t; exact weights |c|²."""
    names = list(levels)
    onsite = np.array([e for n in names for e in levels[n]])
    owner = np.repeat(np.arange(len(names)), 2)
    h = np.diag(onsite) + t * (1 - np.eye(len(onsite)))
    eps, vec = np.linalg.eigh(h)
    weights = np.array([(vec[owner == g] ** 2).sum(axis=0) for g in range(len(names))])
    occ = np.zeros(len(eps))
    occ[: n_occ_per_domain * len(names)] = 2.0
    return OrbitalSet(eps, occ, weights, names)


def test_alignment_types_from_edges():
    # nested gap (CsPbI3 inside CsPbCl3): both carriers in A -> type-I
    r = classify_alignment(0.0, 1.8, -0.6, 2.4)
    assert r["type"] == "type-I" and r["hole_in"] == "A" and r["electron_in"] == "A"
    assert r["dEv_eV"] == pytest.approx(0.6) and r["dEc_eV"] == pytest.approx(-0.6)
    # staggered: hole in A (higher VBM), electron in B (lower CBM) -> type-II
    r = classify_alignment(0.0, 2.0, -0.5, 1.5)
    assert r["type"] == "type-II" and r["hole_in"] == "A" and r["electron_in"] == "B"
    # one offset below the tolerance -> quasi-type-II, that carrier shared
    r = classify_alignment(0.0, 2.0, -0.05, 1.5, tol_eV=0.1)
    assert r["type"] == "quasi-type-II" and r["hole_in"] == "both" and r["electron_in"] == "B"
    assert classify_alignment(0.0, 2.0, -0.05, 1.5, tol_eV=0.01)["type"] == "type-II"
    # symmetric in A <-> B
    assert classify_alignment(-0.6, 2.4, 0.0, 1.8)["type"] == "type-I"
    for bad in [(0.0, -1.0, 0.0, 1.0), (np.nan, 1.0, 0.0, 1.0)]:
        with pytest.raises(InputError):
            classify_alignment(*bad)
    with pytest.raises(InputError, match="tol_eV"):
        classify_alignment(0, 1, 0, 1, tol_eV=-1)


def test_band_edges_recover_tight_binding_levels():
    """Weakly coupled domains: the edges are the site levels plus the second-order shift
    Σ_j t²/(e_i − e_j) (perturbation theory, the independent reference), and the types follow."""
    levels = {"chalcohalide": (-0.2, 1.3), "CsPbCl3": (-1.0, 2.0), "CsPbI3": (0.0, 1.7)}
    t = 0.02
    orb = _tight_binding(levels, t=t)
    np.testing.assert_allclose(domain_fractions(orb).sum(axis=0), 1.0, atol=1e-12)
    edges = band_edges(orb)
    site = np.array([e for pair in levels.values() for e in pair])

    def pt2(e0):
        return e0 + sum(t * t / (e0 - e) for e in site if e != e0)

    for name, (vb, cb) in levels.items():
        assert edges[name]["vbm_eV"] == pytest.approx(pt2(vb), abs=2e-4), name
        assert edges[name]["cbm_eV"] == pytest.approx(pt2(cb), abs=2e-4), name
        # first-order mixing: fraction 1 − Σ_{j in other domains} (t / (e_i − e_j))²
        others = [e for n, pair in levels.items() if n != name for e in pair]
        assert edges[name]["vbm_fraction"] == pytest.approx(1 - sum((t / (vb - e)) ** 2 for e in others), abs=1e-3)
    table = {(r["domain_a"], r["domain_b"]): r for r in alignment_table(orb)}
    assert table[("chalcohalide", "CsPbCl3")]["type"] == "type-I"          # chalcohalide gap inside CsPbCl3's
    assert table[("CsPbCl3", "CsPbI3")]["type"] == "type-I"
    pair = table[("chalcohalide", "CsPbI3")]                                # staggered
    assert pair["type"] == "type-II" and pair["hole_in"] == "CsPbI3" and pair["electron_in"] == "chalcohalide"
    f = frontier_character(orb)
    assert f["homo_domain"] == "CsPbI3" and f["lumo_domain"] == "chalcohalide" and f["type"] == "type-II"
    assert f["gap_eV"] == pytest.approx(pt2(1.3) - pt2(0.0), abs=3e-4)
    # DOS integrates to 2 electrons per orbital in each domain's share
    e = np.linspace(-3, 4, 4001)
    dos = projected_dos(orb, e, sigma_eV=0.05)
    np.testing.assert_allclose(np.trapezoid(dos, e, axis=1), 2.0 * domain_fractions(orb).sum(axis=1), rtol=1e-6)


def test_degenerate_valence_levels_are_quasi_type_ii():
    """Equal VB levels mix into shared orbitals (fractions 1/2): one carrier delocalised."""
    orb = _tight_binding({"CsPbCl3": (0.0, 2.5), "CsPbI3": (0.0, 1.6)}, t=0.05)
    f = frontier_character(orb, localised=0.6)
    assert f["homo_fractions"]["CsPbCl3"] == pytest.approx(0.5, abs=0.02)
    assert f["type"] == "quasi-type-II"
    (row,) = alignment_table(orb, threshold=0.4, tol_eV=0.1)
    assert row["type"] == "quasi-type-II" and row["hole_in"] == "both" and row["electron_in"] == "CsPbI3"


def test_orbital_set_checks():
    with pytest.raises(InputError, match="disagree"):
        OrbitalSet([0.0, 1.0], [2.0], [[1, 1]], ["a"])
    with pytest.raises(InputError, match="ascending"):
        OrbitalSet([1.0, 0.0], [2.0, 0.0], [[1, 1]], ["a"])
    orb = OrbitalSet([0.0, 1.0], [2.0, 2.0], [[1, 1]], ["a"])
    with pytest.raises(AnalysisError, match="nlumo"):
        orb.lumo
    with pytest.raises(InputError, match="threshold"):
        band_edges(orb, threshold=1.5)


def test_orbital_set_round_trips_through_its_record():
    """to_dict is JSON-serialisable and from_dict gives the same orbitals back."""
    orb = _tight_binding({"CsPbCl3": (-1.0, 2.0), "CsPbI3": (-0.5, 1.2)})
    orb.meta["energy_eV"] = -123.5
    back = OrbitalSet.from_dict(json.loads(json.dumps(orb.to_dict())))
    np.testing.assert_array_equal(back.energies_eV, orb.energies_eV)
    np.testing.assert_array_equal(back.occupations, orb.occupations)
    np.testing.assert_array_equal(back.weights, orb.weights)
    assert back.groups == orb.groups and back.meta == {"energy_eV": -123.5}
    assert back.gap_eV == orb.gap_eV
    with pytest.raises(InputError, match="not an orbital record"):
        OrbitalSet.from_dict({"energies_eV": [0.0]})


def test_read_real_cp2k_pdos_sum_rules():
    """A real CP2K 2023.1 PbCl2 run (PBE/DZVP/GTH, NLUMO 6), Pb and the two Cl as two lists.

    Independent checks: occupations add up to the GTH valence electrons (Pb 4 + 2 × Cl 7 = 18),
    and the Mulliken weights of every orbital over the two lists add up to 1.
    """
    from halex.engines.cp2k.orbitals import read_pdos

    e1, occ, w1, ef = read_pdos(DATA / "cp2k_pbcl2_list1.pdos")
    e2, occ2, w2, _ = read_pdos(DATA / "cp2k_pbcl2_list2.pdos")
    assert len(e1) == 15 and np.array_equal(e1, e2) and np.array_equal(occ, occ2)
    assert occ.sum() == pytest.approx(18.0)
    np.testing.assert_allclose(w1 + w2, 1.0, atol=1e-6)
    orb = OrbitalSet(e1, occ, [w1, w2], ["Pb", "Cl"])
    assert orb.homo == 8 and ef == pytest.approx(orb.energies_eV[8], abs=1e-4)  # E_Fermi printed = HOMO
    f = frontier_character(orb)
    assert f["homo_domain"] == "Cl" and f["lumo_domain"] == "Pb"        # Cl 3p lone pair / Pb 6p
    assert 2.0 < f["gap_eV"] < 5.0


def test_read_pdos_rejects_bad_files(tmp_path):
    from halex.engines.cp2k.orbitals import read_pdos

    bad = tmp_path / "x.pdos"
    bad.write_text("hello\n1 2 3\n")
    with pytest.raises(FileFormatError, match="not a CP2K PDOS"):
        read_pdos(bad)
    text = (DATA / "cp2k_pbcl2_list1.pdos").read_text().splitlines()
    bad.write_text("\n".join(text[:4] + ["1 x 2 3 4 5"]))
    with pytest.raises(FileFormatError, match="line 5"):
        read_pdos(bad)
    with pytest.raises(FileFormatError, match="cannot read"):
        read_pdos(tmp_path / "missing.pdos")


def test_pdos_block_lists_are_one_based_and_chunked():
    from halex.engines.cp2k.orbitals import pdos_print_block

    block = pdos_print_block([list(range(25)), [25, 26]], nlumo=7)
    assert "NLUMO 7" in block and block.count("&LDOS") == 2
    lists = [ln.split()[1:] for ln in block.splitlines() if ln.strip().startswith("LIST")]
    assert [int(v) for v in lists[0]] == list(range(1, 21)) and [int(v) for v in lists[1]] == list(range(21, 26))
    assert [int(v) for v in lists[2]] == [26, 27]
    with pytest.raises(InputError):
        pdos_print_block([[]], nlumo=3)


def test_electronic_domains_of_an_exchanged_heterostructure():
    from halex.models import exchange_layers, heterostructure

    hs = heterostructure((2, 2, 2), 1)
    x = exchange_layers(hs, 1, start="bottom")
    d = electronic_domains(x)
    layer = x.arrays["layer"]
    assert set(d[layer == -1]) == {"chalcohalide"}
    assert set(d[layer == 2]) == {"CsPbI3"} and set(d[(layer == 0) | (layer == 1)]) == {"CsPbCl3"}
    assert set(electronic_domains(hs)) == {"chalcohalide", "CsPbCl3"}
    bare = hs.copy()
    del bare.arrays["domain"]
    with pytest.raises(InputError, match="domain"):
        electronic_domains(bare)


def test_mlip_engine_has_no_orbitals(tmp_path):
    from halex.io import write_structure
    from halex.models import heterostructure
    from halex.studies.electronic import orbital_analysis

    hs = heterostructure((1, 1, 1), 1)
    with pytest.raises(EngineUnavailableError, match="no electrons"):
        orbital_analysis(hs, "mlip")
    with pytest.raises(InputError, match="nlumo"):
        orbital_analysis(hs, "mlip", nlumo=0)
    for bad, msg in [({"a": [0, 1]}, "leave atoms"), ({"a": list(range(24)), "b": [3]}, "one group"), ({"a": []}, "non-empty")]:
        with pytest.raises(InputError, match=msg):
            orbital_analysis(hs, "cp2k", groups=bad)
    model = tmp_path / "hs.extxyz"
    write_structure(model, hs)
    out = tmp_path / "out"
    r = run_cli("electronic", str(model), "--engine", "mlip", "-o", str(out), "--db", str(tmp_path / "e.db"))
    assert r.returncode == 2 and r.stderr.strip().splitlines()[-1].startswith("halex: error:") and "Traceback" not in r.stderr
    assert not out.exists()


def _molecule_pair():
    """A PbI2 and a PbCl2 molecule 6.5 Å apart, labelled as perovskite layers 1 (I) and 2 (Cl)."""
    from ase import Atoms

    pair = Atoms("PbI2", positions=[[0, 0, 0], [2.80, 0, 0.35], [-0.70, 2.71, 0.35]]) + \
        Atoms("PbCl2", positions=[[0, 0, 6.5], [2.45, 0, 6.8], [-0.60, 2.38, 6.8]])
    pair.new_array("domain", np.array(["perovskite"] * 6))
    pair.new_array("layer", np.array([1, 1, 1, 2, 2, 2]))
    return pair


@needs_cp2k
@pytest.mark.slow
@pytest.mark.cp2k
def test_cli_electronic_with_real_cp2k(tmp_path):
    """Real CP2K on two weakly bound molecules: sum rules, known chemistry, outputs, cache.

    Independent references: GTH valence electrons (2 × (Pb 4 + 2 × 7) = 36); the Mulliken
    weights of each orbital add up to 1; the PbCl2 edges in the pair equal the HOMO/LUMO of
    the isolated PbCl2 molecule of tests/data (same geometry, separate CP2K run) within
    0.1 eV; the iodide's gap nests inside the chloride's (type-I on PbI2).
    """
    from halex.engines.cp2k.orbitals import read_pdos
    from halex.io import write_structure

    model = tmp_path / "pair.extxyz"
    write_structure(model, _molecule_pair())
    out = tmp_path / "el"
    args = ["electronic", str(model), "-o", str(out), "--nlumo", "4", "--db", str(tmp_path / "dft.db"),
            "--set", "cutoff_ry=200", "--set", "rel_cutoff_ry=40", "--set", "vacuum=4.0", "--json"]
    r = run_cli(*args, timeout=1500)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(r.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["domains"] == {"CsPbCl3": 3, "CsPbI3": 3}
    rows = (out / "orbitals.csv").read_text().splitlines()
    header = rows[0].split(",")
    vals = np.array([[float(v) for v in ln.split(",")] for ln in rows[1:]])
    occ = vals[:, header.index("occupation")]
    assert occ.sum() == pytest.approx(36.0) and np.sum(occ < 0.5) == 4
    np.testing.assert_allclose(vals[:, 3:].sum(axis=1), 1.0, atol=1e-3)
    e_iso, occ_iso, _, _ = read_pdos(DATA / "cp2k_pbcl2_list1.pdos")
    homo_iso, lumo_iso = e_iso[occ_iso > 0.5][-1], e_iso[occ_iso < 0.5][0]
    edges = summary["band_edges"]
    assert edges["CsPbCl3"]["vbm_eV"] == pytest.approx(homo_iso, abs=0.1)
    assert edges["CsPbCl3"]["cbm_eV"] == pytest.approx(lumo_iso, abs=0.1)
    assert res["homo_domain"] == "CsPbI3" and res["lumo_domain"] == "CsPbI3" and res["homo_lumo_type"] == "type-I"
    (row,) = summary["alignment"]
    assert row["type"] == "type-I" and row["hole_in"] == row["electron_in"] == "CsPbI3"
    assert (out / "orbitals.png").stat().st_size > 10_000 and (out / "alignment.csv").is_file()
    again = run_cli(*args)
    assert again.returncode == 0 and json.loads(again.stdout)["cached"] is True
