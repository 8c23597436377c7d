"""n2p2's structure files (``input.data``, §1): streaming reader and writer.

See the package docstring (:mod:`hpcnnp.io.n2p2`) for the conventions of the returned
:class:`ase.Atoms`.
"""

from __future__ import annotations

import os
import re
from itertools import islice
from typing import Iterator

import numpy as np

from hpcnnp.errors import InputFileError, StructureError
from hpcnnp.io.n2p2._common import _Z, _atomic_write, _to_float

__all__ = ["iter_data", "read_data", "write_data", "count_structures"]

# ---------------------------------------------------------------------------------------
# input.data (§1)
# ---------------------------------------------------------------------------------------

# One atom line: keyword, x y z, element, charge, (ignored) atomic energy, fx fy fz.
# Element column wider than any symbol so that e.g. "Lix" is caught, not truncated.
_ATOM_DTYPE = np.dtype([("k", "U5"), ("r", "f8", (3,)), ("el", "U3"), ("q", "f8"),
                        ("e", "f8"), ("f", "f8", (3,))])
_DATA_KEYWORDS = ("begin", "end", "comment", "lattice", "atom", "energy", "charge")
# n2p2 requires periodic structures to be neutral to 10 machine epsilons.
_NEUTRAL_TOLERANCE = 10.0 * np.finfo(float).eps


class _Block:
    """Accumulates one begin/end block while streaming."""

    __slots__ = ("begin_line", "set_tag", "comment", "lattice", "energy", "charge",
                 "charge_line", "atom_lines", "other_lines", "index")

    def __init__(self, begin_line, set_tag, index):
        self.begin_line = begin_line
        self.set_tag = set_tag
        self.index = index
        self.comment = None
        self.lattice = []
        self.energy = None
        self.charge = None
        self.charge_line = None
        self.atom_lines = []
        self.other_lines = [begin_line]      # line numbers of non-atom lines

    def atom_line_numbers(self, end_line):
        others = set(self.other_lines)
        return [n for n in range(self.begin_line + 1, end_line) if n not in others]


def _parse_atoms(block, end_line, path, allowed):
    """Bulk-parse the atom lines of a block; on failure, find the first bad line.

    ``allowed`` maps the allowed element symbols to their atomic numbers."""
    n = len(block.atom_lines)
    if n == 0:
        return np.zeros((0, 3)), np.zeros(0, dtype=int), np.zeros(0), np.zeros((0, 3))
    try:
        table = np.loadtxt(block.atom_lines, dtype=_ATOM_DTYPE, comments=None, ndmin=1)
        numbers = [allowed[s] for s in table["el"].tolist()]
    except (ValueError, KeyError):
        table = None
    if (table is None or not np.isfinite(table["r"]).all()
            or not np.isfinite(table["q"]).all() or not np.isfinite(table["e"]).all()
            or not np.isfinite(table["f"]).all()):
        _diagnose_atoms(block, end_line, path, allowed)
        raise InputFileError(path, block.begin_line, "cannot read the atom lines of this "
                                                     "structure")  # pragma: no cover
    return table["r"], numbers, table["q"], table["f"]


def _diagnose_atoms(block, end_line, path, allowed):
    """Line-by-line check of a block's atom lines: raises on the first defect."""
    names = ("x", "y", "z", None, "charge", "atomic energy", "fx", "fy", "fz")
    for number, raw in zip(block.atom_line_numbers(end_line), block.atom_lines):
        tokens = raw.split()
        if len(tokens) != 10:
            raise InputFileError(path, number, f"atom line has {len(tokens)} fields, n2p2 "
                                               "needs 10: atom x y z element charge "
                                               "energy fx fy fz")
        for token, name in zip(tokens[1:], names):
            if name is None:
                if token not in allowed:
                    raise InputFileError(path, number, _unknown_element_message(token, allowed))
            else:
                _to_float(token, path, number, f"atom {name}")


def _unknown_element_message(symbol, allowed):
    if symbol not in _Z:
        return f"unknown element {symbol!r} (n2p2 knows H ... No, case-sensitive)"
    return (f"element {symbol!r} is not one of the potential's elements "
            f"({' '.join(sorted(allowed, key=_Z.__getitem__))})")


def _make_atoms(block, end_line, path, allowed):
    from ase import Atoms
    from ase.calculators.singlepoint import SinglePointCalculator

    if len(block.lattice) not in (0, 3):
        raise InputFileError(path, end_line,
                             f"strange number of box vectors: {len(block.lattice)} lattice "
                             f"line(s) in the structure that began at line "
                             f"{block.begin_line} (n2p2 needs 0 or 3)")
    periodic = len(block.lattice) == 3
    charge = 0.0 if block.charge is None else block.charge
    if periodic and abs(charge) > _NEUTRAL_TOLERANCE:
        raise InputFileError(path, block.charge_line,
                             f"periodic structure with total charge {charge!r}: n2p2 "
                             "requires periodic structures to be neutral")
    positions, numbers, charges, forces = _parse_atoms(block, end_line, path, allowed)
    cell = np.array(block.lattice) if periodic else np.zeros((3, 3))
    atoms = Atoms(numbers=numbers, positions=positions, cell=cell, pbc=periodic)
    atoms.set_initial_charges(charges)
    energy = 0.0 if block.energy is None else block.energy
    atoms.calc = SinglePointCalculator(atoms, energy=energy, forces=np.array(forces))
    info = atoms.info
    if block.comment is not None:
        info["comment"] = block.comment
    if block.set_tag is not None:
        info["set"] = block.set_tag
    info["charge"] = charge
    info["n2p2_index"] = block.index
    info["n2p2_line"] = block.begin_line
    return atoms


def open_text(path_or_file):
    """Open an n2p2 text file for reading (UTF-8; undecodable bytes kept as surrogates,
    so that the parser can name the line).

    Parameters
    ----------
    path_or_file : path or file object
        A file object is passed through.

    Returns
    -------
    file : file object
    name : str
        The path, or the stream's name.
    close : bool
        Whether the caller opened the file here and must close it.

    Raises
    ------
    InputFileError
        The file is missing, is a directory or cannot be read.
    """
    if hasattr(path_or_file, "read"):
        return path_or_file, getattr(path_or_file, "name", "<stream>"), False
    path = os.fspath(path_or_file)
    try:
        f = open(path, "r", encoding="utf-8", errors="surrogateescape")
    except FileNotFoundError:
        raise InputFileError(path, None, "file not found") from None
    except IsADirectoryError:
        raise InputFileError(path, None, "is a directory, not a file") from None
    except OSError as exc:
        raise InputFileError(path, None, f"cannot read: {exc.strerror}") from None
    return f, path, True


def iter_data(path, elements=None) -> Iterator:
    """Stream the structures of an n2p2 ``input.data`` (§1), one :class:`ase.Atoms`
    per ``begin``/``end`` block.

    Only one block is held in memory at a time, so files of any size can be read.

    Parameters
    ----------
    path : str, os.PathLike or text file object
    elements : iterable of str, optional
        Elements allowed (the potential's); by default every element H...No.

    Yields
    ------
    ase.Atoms
        See the module docstring for the conventions.

    Raises
    ------
    InputFileError
        Any defect n2p2 would stop on (blank or ``#`` lines, unknown keywords, atom
        lines without exactly 10 fields, bad or non-finite numbers, unknown elements,
        1 or 2 lattice lines, charged periodic structures, bad ``begin`` arguments,
        nested or unclosed blocks), with the file name and line number.
    """
    if elements is None:
        allowed = _Z
    else:
        allowed = {}
        for symbol in elements:
            if symbol not in _Z:
                raise ValueError(f"iter_data: unknown element {symbol!r} in 'elements'")
            allowed[symbol] = _Z[symbol]
    f, name, close = open_text(path)
    try:
        yield from _iter_blocks(f, name, allowed)
    finally:
        if close:
            f.close()


def _iter_blocks(f, path, allowed):
    block = None
    index = 0
    number = 0
    for number, raw in enumerate(f, start=1):
        if block is not None and raw[:5] == "atom ":      # fast path, n2p2-written files
            block.atom_lines.append(raw)
            continue
        tokens = raw.split()
        if not tokens:
            raise InputFileError(path, number, "blank line (n2p2 does not allow blank lines "
                                               "in input.data)")
        key = tokens[0]
        if key.startswith("#"):
            raise InputFileError(path, number, "comment line (n2p2 does not allow '#' lines "
                                               "in input.data)")
        if key == "begin":
            if block is not None:
                raise InputFileError(path, number, f"'begin' inside the structure that began "
                                                   f"at line {block.begin_line} (missing 'end')")
            set_tag = None
            if len(tokens) > 1:
                if len(tokens) == 2 and tokens[1] in ("set=train", "set=test"):
                    set_tag = tokens[1][4:]
                else:
                    raise InputFileError(path, number, f"unexpected 'begin' argument "
                                                       f"{' '.join(tokens[1:])!r} (only "
                                                       "set=train or set=test)")
            block = _Block(number, set_tag, index)
            continue
        if key not in _DATA_KEYWORDS:
            raise InputFileError(path, number, f"unknown keyword {key!r} (expected one of "
                                               f"{', '.join(_DATA_KEYWORDS)})")
        if block is None:
            raise InputFileError(path, number, f"{key!r} outside a begin ... end block")
        if key == "atom":
            block.atom_lines.append(raw)
            continue
        block.other_lines.append(number)
        if key == "end":
            if len(tokens) > 1:
                raise InputFileError(path, number, "'end' takes no argument")
            yield _make_atoms(block, number, path, allowed)
            block = None
            index += 1
        elif key == "comment":
            if block.comment is not None:
                raise InputFileError(path, number, "second 'comment' line in this structure")
            text = raw.lstrip()[len("comment"):]
            if text[:1] not in ("", " ", "\t", "\n", "\r"):
                raise InputFileError(path, number, f"unknown keyword {key!r}")
            block.comment = text[1:].rstrip("\r\n")
        elif key == "lattice":
            if len(tokens) != 4:
                raise InputFileError(path, number, f"lattice line needs 3 numbers, got "
                                                   f"{len(tokens) - 1}")
            if len(block.lattice) == 3:
                raise InputFileError(path, number, "more than 3 lattice lines")
            block.lattice.append([_to_float(t, path, number, "lattice vector")
                                  for t in tokens[1:]])
        else:   # energy, charge
            if len(tokens) != 2:
                raise InputFileError(path, number, f"'{key}' needs one number, got "
                                                   f"{len(tokens) - 1}")
            if getattr(block, key) is not None:
                raise InputFileError(path, number, f"second '{key}' line in this structure")
            setattr(block, key, _to_float(tokens[1], path, number, key))
            if key == "charge":
                block.charge_line = number
    if block is not None:
        raise InputFileError(path, number, f"file ends inside the structure that began at "
                                           f"line {block.begin_line} (missing 'end'; "
                                           "truncated file?)")


def read_data(path, index=None, elements=None) -> list:
    """Read structures of an n2p2 ``input.data``.

    Parameters
    ----------
    path : str, os.PathLike or text file object
    index : int, slice or None
        Which structures (0-based, like :func:`ase.io.read`; negative values count from
        the end).  None = all.  An int gives a one-element list.
    elements : iterable of str, optional
        Allowed elements (see :func:`iter_data`).

    Returns
    -------
    list of ase.Atoms
    """
    stream = iter_data(path, elements)
    if index is None:
        return list(stream)
    if isinstance(index, slice):
        start, stop, step = index.start, index.stop, index.step
        if ((start is None or start >= 0) and (stop is None or stop >= 0)
                and (step is None or step > 0)):
            try:
                return list(islice(stream, start, stop, step))
            finally:
                stream.close()
        return list(stream)[index]
    index = int(index)
    if index >= 0:
        try:
            for k, atoms in enumerate(stream):
                if k == index:
                    return [atoms]
        finally:
            stream.close()
        raise IndexError(f"read_data: {os.fspath(path) if not hasattr(path, 'read') else path}"
                         f" has no structure with index {index}")
    images = list(stream)
    try:
        return [images[index]]
    except IndexError:
        raise IndexError(f"read_data: structure index {index} out of range "
                         f"({len(images)} structures)") from None


_ATOM_FORMAT = ("atom %24.16E %24.16E %24.16E %2s %24.16E %24.16E %24.16E %24.16E "
                "%24.16E\n")


def _total_charge(atoms, index, neutralize):
    """(total charge to write, atomic charges to write) of one structure.

    A periodic structure must be neutral (n2p2 and :func:`read_data` refuse it
    otherwise): refused here, or -- with *neutralize* -- written with total charge 0
    and the atomic charges shifted by -Q/N (a uniform compensating background)."""
    charges = atoms.get_initial_charges()
    total = atoms.info.get("charge")
    total = float(charges.sum()) if total is None else float(total)
    if not atoms.pbc.all() or abs(total) <= _NEUTRAL_TOLERANCE:
        return total, charges
    if neutralize:
        return 0.0, charges - charges.sum() / max(len(atoms), 1)
    name = atoms.get_chemical_formula()
    if "comment" in atoms.info:
        name += f", comment {str(atoms.info['comment'])!r}"
    raise StructureError(
        f"write_data: structure {index} ({name}) is periodic with total charge {total!r}; "
        "n2p2 (and read_data) accept only neutral periodic structures.  Give the atoms "
        "neutral initial charges (e.g. atoms.set_initial_charges(None) and no "
        "info['charge']), or write it with a compensating background: "
        "write_data(..., neutralize=True)")


def _format_structure(atoms, index=0, neutralize=False) -> str:
    pbc = np.asarray(atoms.pbc, dtype=bool)
    if pbc.any() and not pbc.all():
        raise ValueError("n2p2's input.data knows only fully periodic or non-periodic "
                         f"structures, not pbc={pbc.tolist()}")
    info = atoms.info
    set_tag = info.get("set")
    if set_tag is None:
        out = ["begin\n"]
    elif set_tag in ("train", "test"):
        out = [f"begin set={set_tag}\n"]
    else:
        raise ValueError(f"atoms.info['set'] must be 'train' or 'test', not {set_tag!r}")
    if "comment" in info:
        comment = str(info["comment"])
        if "\n" in comment:
            raise ValueError("atoms.info['comment'] must be a single line")
        out.append(f"comment {comment}\n")
    if pbc.all():
        for vector in np.asarray(atoms.cell.array, dtype=float).tolist():
            out.append("lattice %24.16E %24.16E %24.16E\n" % tuple(vector))
    n = len(atoms)
    results = getattr(atoms.calc, "results", None) or {}
    energy = results.get("energy")
    forces = results.get("forces")
    forces = np.zeros((n, 3)) if forces is None else np.asarray(forces, dtype=float)
    total_charge, charges = _total_charge(atoms, index, neutralize)
    positions = atoms.positions.tolist()
    symbols = atoms.get_chemical_symbols()
    out.extend(_ATOM_FORMAT % (r[0], r[1], r[2], s, q, 0.0, f[0], f[1], f[2])
               for r, s, q, f in zip(positions, symbols, charges.tolist(), forces.tolist()))
    out.append("energy %24.16E\n" % (0.0 if energy is None else float(energy)))
    out.append("charge %24.16E\n" % float(total_charge))
    out.append("end\n")
    return "".join(out)


def write_data(path_or_fileobj, images, append=False, neutralize=False):
    """Write structures in n2p2's ``input.data`` output format (§1).

    Parameters
    ----------
    path_or_fileobj : str, os.PathLike or text file object
        A path is written atomically (temporary file + rename); with ``append=True``
        the new structures are appended to the existing file instead (after all of
        them were formatted, so a refused structure appends nothing).
    images : ase.Atoms or iterable of ase.Atoms
        Energy and forces from ``atoms.calc.results`` (0 when absent), atomic charges
        from the initial charges, the ``set=`` tag from ``info["set"]``, the comment
        from ``info["comment"]``, the total charge from ``info["charge"]`` (default:
        sum of the atomic charges).  Positions are written as they are (not wrapped).
    neutralize : bool
        n2p2 reads periodic structures only when they are neutral (|total charge| <=
        10 machine epsilons), so a charged periodic structure is refused
        (:class:`~hpcnnp.errors.StructureError` naming it) -- unless *neutralize* is
        set: then it is written with total charge 0 and every atomic charge shifted by
        -Q/N (a uniform compensating background, as periodic DFT codes treat charged
        cells).  Non-periodic structures are always written as they are.

    Raises
    ------
    StructureError
        A charged periodic structure without ``neutralize``; a path is then left as it
        was (nothing written).
    """
    from ase import Atoms

    if isinstance(images, Atoms):
        images = [images]

    def write(f):
        for k, atoms in enumerate(images):
            f.write(_format_structure(atoms, k, neutralize))

    if hasattr(path_or_fileobj, "write"):
        write(path_or_fileobj)
    elif append:
        text = "".join(_format_structure(a, k, neutralize) for k, a in enumerate(images))
        with open(path_or_fileobj, "a", encoding="utf-8", newline="\n") as f:
            f.write(text)
    else:
        _atomic_write(path_or_fileobj, write)



_BEGIN_RE = re.compile(rb"^[ \t]*begin(?=[ \t\r\n]|$)", re.MULTILINE)


def count_structures(path, chunk_size=1 << 24):
    """Number of ``begin`` lines of an ``input.data`` (fast, no parsing)."""
    count = 0
    tail = b""
    with open(path, "rb") as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                break
            block = tail + chunk
            cut = block.rfind(b"\n") + 1
            count += len(_BEGIN_RE.findall(block, 0, cut))
            tail = block[cut:]
    if tail:
        count += len(_BEGIN_RE.findall(tail))
    return count
