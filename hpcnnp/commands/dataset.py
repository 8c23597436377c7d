"""``hpcnnp dataset``: inspect, export, import and filter the HDF5 data set.

See :mod:`hpcnnp.io.dataset` for the file layout.
"""

from __future__ import annotations

import argparse
import json
import math

from hpcnnp.errors import HpcnnpError

_EPILOG = """\
examples:
  hpcnnp dataset info dataset.h5
  hpcnnp dataset export dataset.h5 -o input.data --test-fraction 0.1 --seed 1
  hpcnnp dataset export dataset.h5 -o lco.extxyz --class LCO
  hpcnnp dataset import dataset.h5 vasprun.xml --class "LLZO cubic" --temperature 1273 \\
      --labeler "vasp PBE"
  hpcnnp dataset import dataset.h5 md-pos-1.xyz --class "mixture #3" --cell 12 12 12
  hpcnnp dataset filter dataset.h5 -o clean.h5 --sigma 5
"""


def register(subparsers):
    """Add the ``dataset`` parser to the ``hpcnnp`` sub-command parsers."""
    p = subparsers.add_parser(
        "dataset", help="HDF5 data set: info, export (input.data/extxyz), import, filter",
        description="Work with the labelled HDF5 data set of hpcnnp.",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    sub.required = True

    q = sub.add_parser("info", help="structures, classes, temperatures, energy/force statistics")
    q.add_argument("dataset", metavar="DATASET.h5")
    q.add_argument("--json", action="store_true", help="print JSON")
    q.set_defaults(func=_info)

    q = sub.add_parser("export", help="write n2p2 input.data or extended XYZ")
    q.add_argument("dataset", metavar="DATASET.h5")
    q.add_argument("--output", "-o", required=True, metavar="FILE",
                   help="output file (input.data, *.extxyz/*.xyz)")
    q.add_argument("--format", choices=("n2p2", "extxyz"),
                   help="default: extxyz for *.xyz/*.extxyz, else n2p2")
    q.add_argument("--class", dest="classes", action="append", metavar="NAME",
                   help="only this structure class (repeatable)")
    q.add_argument("--temperature", dest="temperatures", action="append", type=float,
                   metavar="K", help="only this sampling temperature (repeatable)")
    q.add_argument("--test-fraction", type=float, metavar="F",
                   help="n2p2: tag a random fraction F of the structures set=test, the "
                   "rest set=train")
    q.add_argument("--seed", type=int, default=0, help="seed of the train/test split")
    q.set_defaults(func=_export)

    q = sub.add_parser("import", help="append structures from extxyz, vasprun.xml, OUTCAR or "
                       "CP2K MD output")
    q.add_argument("dataset", metavar="DATASET.h5", help="created if missing")
    q.add_argument("files", nargs="+", metavar="FILE")
    q.add_argument("--format", help="extxyz, vasp-xml, vasp-out or cp2k (default: from the "
                   "file name)")
    q.add_argument("--class", dest="structure_class", metavar="NAME",
                   help="structure class of the imported structures")
    q.add_argument("--temperature", type=float, metavar="K", help="sampling temperature")
    q.add_argument("--labeler", metavar="TEXT", help="reference method, e.g. 'vasp PBE'")
    q.add_argument("--cell", type=float, nargs="+", metavar="X",
                   help="cp2k: cell (3 lengths or 9 numbers, Å) when there is no .cell file")
    q.set_defaults(func=_import)

    q = sub.add_parser("filter", help="copy without outliers (energy/atom or force beyond "
                       "k sigma of the class)")
    q.add_argument("dataset", metavar="DATASET.h5")
    q.add_argument("--output", "-o", metavar="FILE", help="filtered data set (new file)")
    q.add_argument("--sigma", type=float, default=5.0, help="k (default: 5)")
    q.add_argument("--no-energy", action="store_true", help="do not test energies")
    q.add_argument("--no-forces", action="store_true", help="do not test forces")
    q.add_argument("--dry-run", action="store_true", help="only list the outliers")
    q.set_defaults(func=_filter)
    return p


def _info(args):
    from hpcnnp.io.dataset import summary
    s = summary(args.dataset)
    if args.json:
        print(json.dumps(s, indent=1))
        return 0
    print(f"{s['path']}: {s['structures']} structures, {s['atoms']} atoms, "
          f"{s['file_bytes'] / 2**20:.1f} MiB")
    if s["classes"]:
        print(f"{'class':28s} {'n':>6s} {'atoms':>9s} {'T (K)':22s} {'E/atom (eV)':>20s} "
              f"{'F rms':>7s} {'stress':>6s}  labeler")
    for cls, c in s["classes"].items():
        atoms = f"{c['atoms_min']}" if c["atoms_min"] == c["atoms_max"] else \
            f"{c['atoms_min']}-{c['atoms_max']}"
        temps = " ".join(f"{t:g}" for t in c["temperatures"]) or "-"
        print(f"{cls:28s} {c['structures']:6d} {atoms:>9s} {temps:22s} "
              f"{c['energy_per_atom_mean']:10.4f}±{c['energy_per_atom_std']:<9.4f} "
              f"{c['force_rms']:7.3f} {c['with_stress']:6d}  {','.join(c['labelers'])}")
    return 0


def _export(args):
    from hpcnnp.io.dataset import Dataset, export_extxyz, export_n2p2
    fmt = args.format or ("extxyz" if args.output.lower().endswith((".xyz", ".extxyz"))
                          else "n2p2")
    if args.test_fraction is not None and fmt != "n2p2":
        raise HpcnnpError("--test-fraction applies to the n2p2 format only")
    with Dataset(args.dataset, "r") as ds:
        idx = ds.select(args.classes, args.temperatures) \
            if (args.classes or args.temperatures) else None
        if idx is not None and len(idx) == 0:
            raise HpcnnpError(f"{args.dataset}: no structure matches the selection")
        if fmt == "n2p2":
            out = export_n2p2(ds, args.output, indices=idx, test_fraction=args.test_fraction,
                              seed=args.seed)
            extra = "" if out["test"] is None else f" ({out['train']} train, {out['test']} test)"
            print(f"{out['structures']} structures -> {args.output}{extra}")
        else:
            n = export_extxyz(ds, args.output, indices=idx)
            print(f"{n} structures -> {args.output}")
    return 0


def _import(args):
    from hpcnnp.io.dataset import import_files
    options = {}
    if args.cell is not None:
        if len(args.cell) not in (3, 9):
            raise HpcnnpError("--cell takes 3 lengths or 9 numbers")
        options["cell"] = args.cell
    if args.temperature is not None and not (math.isfinite(args.temperature)
                                             and args.temperature > 0):
        raise HpcnnpError(f"--temperature must be > 0 K, got {args.temperature}")
    out = import_files(args.dataset, args.files, format=args.format,
                       structure_class=args.structure_class, temperature=args.temperature,
                       labeler=args.labeler, **options)
    print(f"{out['read']} structures read, {out['added']} added, {out['duplicates']} "
          f"duplicates skipped -> {args.dataset}")
    return 0


def _filter(args):
    from hpcnnp.io.dataset import filter_dataset, find_outliers
    if args.dry_run:
        bad = find_outliers(args.dataset, args.sigma, energy=not args.no_energy,
                            forces=not args.no_forces)
        for i, why in bad.items():
            print(f"{i}: {why}")
        print(f"{len(bad)} outlier(s) at {args.sigma:g} sigma")
        return 0
    if not args.output:
        raise HpcnnpError("filter needs --output NEW.h5 (or --dry-run)")
    out = filter_dataset(args.dataset, args.output, args.sigma, energy=not args.no_energy,
                         forces=not args.no_forces)
    for i, why in out["removed"].items():
        print(f"removed {i}: {why}")
    print(f"{out['kept']} structures kept, {len(out['removed'])} removed -> {args.output}")
    return 0


def run(args):  # pragma: no cover - dispatch is by the sub-parsers
    return args.func(args)
