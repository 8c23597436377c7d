"""Run independent tasks through Parsl or one after the other.

The task bodies of an active-learning campaign (:func:`~hpcnnp.active.committee.
train_member`, :func:`~hpcnnp.active.explore.explore_run`,
:func:`~hpcnnp.active.labeling.label_batch`) are module-level functions of
hpcnnp, so Parsl workers import them by name.  :class:`Dispatcher` loads the
site's Parsl configuration on the first call of :meth:`Dispatcher.map` (worker
start-up costs seconds, a campaign whose steps are all finished pays nothing)
and shuts it down in :meth:`Dispatcher.close`.
"""

from __future__ import annotations

from pathlib import Path

from hpcnnp.errors import HpcnnpError

__all__ = ["Dispatcher"]


class Dispatcher:
    """Map a task function over keyword-argument sets.

    Parameters
    ----------
    parsl : bool
        Dispatch as Parsl python_apps (True) or call in this process (False).
    site : str
        Parsl site name or file (:func:`hpcnnp.hpc.sites.load_site`).
    run_dir : path
        Parsl's run directory.
    nodes, workers_per_node, walltime, account, queue :
        As for :meth:`hpcnnp.hpc.sites.Site.parsl_config`.
    log : callable(str), optional
    """

    def __init__(self, parsl=False, site="local", run_dir="runinfo", nodes=1,
                 workers_per_node=None, walltime=None, account=None, queue=None, log=None):
        self.use_parsl = bool(parsl)
        self.site = site
        self.run_dir = Path(run_dir)
        self.options = {"nodes": nodes, "workers_per_node": workers_per_node,
                        "walltime": walltime, "account": account, "queue": queue}
        self.log = log or (lambda text: None)
        self._dfk = None
        self._apps = {}

    def _load(self):
        if self._dfk is not None:
            return
        try:
            import parsl
        except ImportError:
            raise HpcnnpError("Parsl is not installed (pip install parsl); set "
                              "parallel.parsl: false or use --no-parsl") from None
        from hpcnnp.hpc.sites import load_site

        site = load_site(self.site)
        config = site.parsl_config(run_dir=str(self.run_dir),
                                   **{k: v for k, v in self.options.items() if v is not None})
        self.log(f"Parsl: site {site.name}, run dir {self.run_dir}")
        self._dfk = parsl.load(config)

    def map(self, func, kwargs_list, progress=None):
        """``[func(**kw) for kw in kwargs_list]``, as Parsl apps when enabled.

        Every task runs to its end before the first error (if any) is raised, so
        that finished tasks leave their results on disk.  ``progress(done, total)``
        (e.g. a :class:`hpcnnp.progress.Progress`) is called as tasks finish.
        """
        kwargs_list = list(kwargs_list)
        if not kwargs_list:
            return []
        n = len(kwargs_list)
        report = progress or (lambda done, total: None)
        results, first = [None] * n, None
        if not self.use_parsl:
            for k, kw in enumerate(kwargs_list):
                try:
                    results[k] = func(**kw)
                except Exception as exc:      # noqa: BLE001 - re-raised below
                    first = first or exc
                report(k + 1, n)
        else:
            self._load()
            from concurrent.futures import as_completed

            from parsl import python_app

            app = self._apps.get(func)
            if app is None:
                app = self._apps[func] = python_app(func, data_flow_kernel=self._dfk)
            futures = {app(**kw): k for k, kw in enumerate(kwargs_list)}
            for done, fut in enumerate(as_completed(futures), 1):
                try:
                    results[futures[fut]] = fut.result()
                except Exception as exc:      # noqa: BLE001 - re-raised below
                    first = first or exc
                report(done, n)
        if hasattr(progress, "close"):
            progress.close()
        if first is not None:
            raise first
        return results

    def close(self):
        """Shut down the Parsl workers (if they were started)."""
        if self._dfk is None:
            return
        import parsl

        try:
            self._dfk.cleanup()
        finally:
            parsl.clear()
            self._dfk = None
            self._apps = {}

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
