"""hessmask: do the largest parameters of a network span the top eigenspace of its loss Hessian?

The library behind the Snakemake study, in layers that import only downward: leaves (``progress``,
``rows``, ``seeds``, ``dims``, ``paths``, ``figures``, ``grassmann``), the config and its registries
(``masks``, ``synthetic``, ``eigen.methods``, ``dof.methods``, ``data``, ``store``, ``config``),
networks and operators (``operators``, ``sketch``, ``models``, ``training``, ``curvature``), the
eigen kernels (``eigen``), the store halves and stages (``eigen.*_store``, ``metrics``, ``dof``,
``plots``) and the job assembly the workflow's scripts call (``jobs``). Modules import their heavy
dependencies (torch) lazily where they can.
"""

__version__ = "0.1.0"
