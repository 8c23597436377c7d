"""Command-line options that several ``hpcnnp`` commands share: one spelling, one
default and one help text each (the n2p2 file set a command reads and the folder it
writes, the progress interval)."""

from __future__ import annotations

__all__ = ["add_n2p2_files", "add_progress_interval"]


def add_n2p2_files(parser, *, settings=None, data=True,
                   output_dir="folder for the output files, created if missing "
                   "(default: .)"):
    """Add ``--settings/-s``, ``--data/-d`` and ``--output-dir/-o``.

    Parameters
    ----------
    parser : argparse.ArgumentParser
    settings : str, optional
        Help text of ``--settings`` (default input.nn); None: no such option.
    data : bool
        Add ``--data`` (default input.data).
    output_dir : str
        Help text of ``--output-dir`` (default: the current folder).
    """
    if settings is not None:
        parser.add_argument("--settings", "-s", metavar="FILE", default="input.nn",
                            help=settings)
    if data:
        parser.add_argument("--data", "-d", metavar="FILE", default="input.data",
                            help="structures in n2p2's input.data format "
                            "(default: input.data)")
    parser.add_argument("--output-dir", "-o", metavar="DIR", default=".", help=output_dir)


def add_progress_interval(parser, default, during, zero=None):
    """Add ``--progress-interval S``: seconds between progress lines ``during`` (a
    phrase, e.g. "while tasks run"); ``zero`` says what 0 does, if anything special."""
    parser.add_argument("--progress-interval", type=float, default=default, metavar="S",
                        help=f"seconds between progress lines {during} ("
                        + (f"0: {zero}; " if zero else "") + f"default: {default:g})")
