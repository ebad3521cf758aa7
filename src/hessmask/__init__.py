"""hessmask: do the largest parameters of a network span the top eigenspace of its loss Hessian?

The library behind the Snakemake study: Grassmannian metrics (``grassmann``), synthetic
baselines (``synthetic``), configuration (``config``), stores (``store``) and figures
(``plots``). Modules import their heavy dependencies (torch) lazily where they can.
"""

__version__ = "0.1.0"
