"""n2p2's output tables: the header every n2p2 tool writes and the files of
``nnp-dataset`` and ``nnp-predict`` (n2p2-formats.md §9, §13).

* :func:`file_header` -- n2p2's ``createFileHeader`` (used for ``scaling.data``,
  ``energy.comp``, ``learning-curve.out`` ...);
* the headers of ``energy.comp``/``forces.comp`` (nnp-dataset) and
  ``energy.out``/``nnatoms.out``/``nnforces.out`` (nnp-predict);
* :func:`format_output_structure` -- one structure of ``output.data``.
"""

from __future__ import annotations

import numpy as np

__all__ = ["file_header", "energy_comp_header", "forces_comp_header", "energy_out_header",
           "nnatoms_out_header", "nnforces_out_header", "format_output_structure"]

def file_header(title, columns):
    """n2p2's ``createFileHeader``: ``columns`` = [(width, name, description), ...]."""
    sep = "#" * 80 + "\n"
    out = [sep] + [f"# {t}\n" for t in ([title] if isinstance(title, str) else title)]
    out.append(sep)
    width_names = max(len(name) for _, name, _ in columns)
    out.append(f"# {'Col':<4} {'Name':<{width_names}} Description\n")
    out.append(sep)
    for i, (_, name, info) in enumerate(columns, start=1):
        out.append(f"# {i:<4} {name:<{width_names}} {info}\n")
    width_data = sum(w + 1 for w, _, _ in columns) - 1
    out.append("#" * width_data + "\n" if width_data > 80 else sep)
    numbers, names = ["#"], ["#"]
    for i, (w, name, _) in enumerate(columns):
        n = w - 2 if i == 0 else w
        numbers.append(f" {i + 1:>{n}}")
        names.append(f" {name[:n]:>{n}}")
    out.append("".join(numbers) + "\n")
    out.append("".join(names) + "\n")
    out.append("#" * width_data + "\n")
    return "".join(out)


def energy_comp_header(normalized):
    cols = [(10, "index", "Structure index."),
            (10, "N", "Number of atoms in structure."),
            (16, "Eref_phys", "Reference potential energy (physical units, atomic energy "
                              "offsets added)."),
            (16, "Ennp_phys", "NNP potential energy (physical units, atomic energy "
                              "offsets added).")]
    if normalized:
        cols += [(16, "Eref_int", "Reference potential energy (internal units)."),
                 (16, "Ennp_int", "NNP potential energy (internal units).")]
    return file_header("Energy comparison.", cols)


def forces_comp_header(normalized):
    cols = [(10, "index_s", "Structure index."),
            (10, "index_a", "Atom index (x, y, z components in consecutive lines)."),
            (16, "Fref_phys", "Reference force (physical units)."),
            (16, "Fnnp_phys", "NNP force (physical units).")]
    if normalized:
        cols += [(16, "Fref_int", "Reference force (internal units)."),
                 (16, "Fnnp_int", "NNP force (internal units).")]
    return file_header("Force comparison.", cols)


_CONF = (10, "conf", "Configuration index (starting with 1).")


def energy_out_header():
    return file_header("Energy comparison.", [
        _CONF, (10, "natoms", "Number of atoms in configuration."),
        (24, "Eref", "Reference potential energy."),
        (24, "Ennp", "Potential energy predicted by NNP."),
        (24, "Ediff", "Difference in energy per atom between reference and NNP "
                      "prediction."),
        (24, "E_offset", "Sum of atomic offset energies (included in column Ennp).")])


def nnatoms_out_header():
    return file_header("Energy contributions calculated from NNP.", [
        _CONF, (10, "index", "Atom index (starting with 1)."),
        (3, "Z", "Nuclear charge of atom."),
        (24, "Qref", "Reference atomic charge."), (24, "Qnnp", "NNP atomic charge."),
        (24, "Eref_atom", "Reference atomic energy contribution."),
        (24, "Ennp_atom", "Atomic energy contribution (physical units, no mean or "
                          "offset energy added).")])


def nnforces_out_header():
    return file_header("Atomic force comparison (ordered by atom index).", [
        _CONF, (10, "index", "Atom index (starting with 1)."),
        (24, "fxRef", "Reference force in x direction."),
        (24, "fyRef", "Reference force in y direction."),
        (24, "fzRef", "Reference force in z direction."),
        (24, "fx", "Force in x direction."), (24, "fy", "Force in y direction."),
        (24, "fz", "Force in z direction.")])


_ATOM_LINE = ("atom %24.16E %24.16E %24.16E %2s %24.16E %24.16E %24.16E %24.16E "
              "%24.16E\n")


def format_output_structure(s, energy, forces, charges=None):
    """One structure in n2p2's ``Structure::writeToFile`` format (NNP values).

    ``s`` is a :class:`~hpcnnp.io.n2p2_reference.N2p2Structure`.
    """
    n = len(s.symbols)
    forces = np.zeros((n, 3)) if forces is None else np.asarray(forces, dtype=float)
    charges = np.zeros(n) if charges is None else np.asarray(charges, dtype=float)
    out = ["begin\n", f"comment {s.comment}\n"]
    if s.periodic:
        out += ["lattice %24.16E %24.16E %24.16E\n" % tuple(v) for v in s.cell_out.tolist()]
    out += [_ATOM_LINE % (r[0], r[1], r[2], el, q, 0.0, f[0], f[1], f[2])
            for r, el, q, f in zip(s.positions_out.tolist(), s.symbols, charges.tolist(),
                                   forces.tolist())]
    out.append("energy %24.16E\n" % energy)
    out.append("charge %24.16E\n" % float(charges.sum()))
    out.append("end\n")
    return "".join(out)
