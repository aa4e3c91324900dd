"""The papermill engine `make reproduce` and the tests run notebooks with: papermill's nbclient engine without
nbclient's mirror of ipywidgets Output widgets.

Why: nbclient mimics a front end for Output widgets by sending comm messages on the kernel's shell socket from
its IOPub loop while it awaits the cell's reply on that same socket; under load the awaited reply is then
sometimes never seen and the run hangs with the kernel idle (jupyter/nbclient#312, open; seen here on the budget
explorer's slider cell while other notebooks ran). Without the mirror, what a cell prints into an Output widget
is not copied into the executed notebook's widget state; nothing we save or test reads it (figures are
displayed by their own cells), and JupyterLab, a real front end, is unaffected.
"""
from __future__ import annotations

from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger
from papermill.utils import merge_kwargs, remove_args

NAME = "emafusion"


class _Client(PapermillNotebookClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.widget_registry = {}  # no Output-widget mimic: see the module docstring


class Engine(NBClientEngine):
    """NBClientEngine's execution with _Client (its keyword handling kept as papermill 2.7 has it)."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None, stderr_file=None,
                                 start_timeout=60, execution_timeout=None, **kwargs):
        kwargs = remove_args(["input_path"], **kwargs)
        safe_kwargs = remove_args(["timeout", "startup_timeout"], **kwargs)
        final_kwargs = merge_kwargs(safe_kwargs, timeout=execution_timeout if execution_timeout else kwargs.get("timeout"),
                                    startup_timeout=start_timeout, kernel_name=kernel_name, log=logger,
                                    log_output=log_output, stdout_file=stdout_file, stderr_file=stderr_file)
        return _Client(nb_man, **final_kwargs).execute()


papermill_engines.register(NAME, Engine)
