"""Every number the docs state about the default run, checked against the stores.

A claims file (``claims.yaml`` at the repository root) lists each sentence of the README,
``docs/science.md`` or another document that quotes a result of the default run, with the query
that computes it from the result stores::

    stores:                        # names the queries use, paths under the results folder
      metrics: mlp_mnist5k/metrics.zarr
    claims:
      - file: README.md
        text: "the overlap is {} to {} times chance"   # as written in the file, {} for each number
        quoted: ["2.6", "3.3"]                          # the numbers as written
        let:                                            # optional named steps, evaluated in order
          r: ratio(metrics, "exact", "train", 0.05)
        query: [r.min(), r.max()]                       # one value per quoted number
        tolerance: 0.05                                 # optional; default half a unit of the last digit

A claim holds when its text, with the quoted numbers put in, appears in the file (whitespace and
line breaks collapsed, so wrapping does not matter) and every query value rounds to its quoted
number within the tolerance. A claim without numbers states a comparison: ``check`` is an
expression that must be true. Editing a number in the document breaks the first condition,
editing it in the claims file the second.

Queries are Python expressions over the named stores (xarray Datasets, opened lazily and checked
against their digests), ``np``, ``xr``, ``json``, ``math`` and the helpers of this module (``ratio``, ``k_of``,
``exact_steps``, ``count``). ``python -m hessmask.claims`` checks a results folder and prints one
line per claim; it exits with 1 if any fails.
"""

from __future__ import annotations

import argparse
import decimal
import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import xarray as xr
import yaml

CLAIM_KEYS = {"file", "text", "quoted", "let", "query", "check", "tolerance", "note"}


class ClaimsError(ValueError):
    """The claims file itself is malformed (a key, a count, a store name)."""


@dataclass(frozen=True)
class Outcome:
    """One claim checked: where it is, whether it holds, and why not."""

    file: str
    text: str
    ok: bool
    problems: tuple[str, ...] = ()
    values: tuple[float, ...] = ()

    def line(self) -> str:
        head = "ok  " if self.ok else "FAIL"
        shown = self.text if len(self.text) <= 100 else self.text[:97] + "..."
        tail = "".join(f"\n      {p}" for p in self.problems)
        return f"{head} {self.file}: {shown}{tail}"


def k_of(ds: xr.Dataset, rho: float) -> int:
    """The mask size of fraction rho as the stores round it: round(rho D)."""
    return int(round(rho * int(ds.attrs["D"])))


def ratio(metrics: xr.Dataset, method: str, split: str, rho: float, metric: str = "overlap") -> xr.DataArray:
    """A metric over chance for one method and split at k = round(rho D), along the solved steps."""
    k = k_of(metrics, rho)
    sel = {"method": method, "split": split, "k": k}
    return (metrics[metric].sel(sel) / metrics["chance"].sel(k=k)).dropna("step").load()


def exact_steps(metrics: xr.Dataset, split: str = "train") -> list[int]:
    """The steps at which the exact eigendecomposition was solved."""
    k = int(metrics["k"].values[0])
    values = metrics["overlap"].sel({"method": "exact", "split": split, "k": k}).dropna("step")
    return [int(s) for s in values["step"].values]


def count(condition: Any) -> int:
    """How many entries of a boolean array are true."""
    return int(np.count_nonzero(np.asarray(condition)))


def _normalize(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _half_unit(quoted: str) -> float:
    """Half a unit in the last written digit: '2.6' -> 0.05, '94' -> 0.5, '1.2e-5' -> 5e-7."""
    exponent = decimal.Decimal(quoted.replace("−", "-")).as_tuple().exponent
    return 0.5 * 10.0 ** int(exponent)


def _number(quoted: str) -> float:
    return float(quoted.replace("−", "-"))


class _Stores(Mapping[str, xr.Dataset]):
    """The named stores, opened (and checked) on first use."""

    def __init__(self, results: Path, paths: Mapping[str, str]):
        self.results, self.paths, self.opened = results, dict(paths), {}

    def __getitem__(self, name: str) -> xr.Dataset:
        if name not in self.opened:
            from hessmask.store import open_dataset

            path = self.results / self.paths[name]
            if not path.exists():
                raise FileNotFoundError(f"store {path} (claims name {name!r}) does not exist: run the default study")
            self.opened[name] = open_dataset(path, load=False)
        return self.opened[name]

    def __contains__(self, name: object) -> bool:
        return name in self.paths

    def __iter__(self):
        return iter(self.paths)

    def __len__(self) -> int:
        return len(self.paths)


def _scalar(value: Any) -> float:
    array = np.asarray(value.values if isinstance(value, xr.DataArray) else value, dtype=np.float64)
    if array.size != 1:
        raise ClaimsError(f"a query gave {array.size} values where one number was quoted")
    return float(array.reshape(()))


def load_claims(path: Path | str) -> tuple[dict[str, str], list[dict[str, Any]]]:
    """The stores and claims of a claims file, checked for shape (not yet for truth)."""
    try:
        raw = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as error:
        raise ClaimsError(f"{path} is not valid YAML ({error}); "
                          "quote an expression that holds ': ' or braces") from None
    if not isinstance(raw, dict) or set(raw) - {"stores", "claims"}:
        raise ClaimsError(f"{path}: top-level keys are 'stores' and 'claims'")
    stores, claims = raw.get("stores") or {}, raw.get("claims") or []
    for i, claim in enumerate(claims):
        where = f"{path}: claim {i + 1} ({str(claim.get('text', ''))[:40]!r})"
        unknown = set(claim) - CLAIM_KEYS
        if unknown:
            raise ClaimsError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(CLAIM_KEYS)}")
        for key in ("file", "text"):
            if not isinstance(claim.get(key), str):
                raise ClaimsError(f"{where}: '{key}' must be a string")
        quoted = claim.get("quoted") or []
        if not all(isinstance(q, str) for q in quoted):
            raise ClaimsError(f"{where}: 'quoted' numbers must be strings (as written, e.g. \"0.0060\")")
        holes = claim["text"].count("{}")
        if holes != len(quoted):
            raise ClaimsError(f"{where}: the text has {holes} '{{}}' but {len(quoted)} quoted numbers")
        queries = claim.get("query", [])
        queries = [queries] if isinstance(queries, str) else queries
        if len(queries) != len(quoted):
            raise ClaimsError(f"{where}: {len(quoted)} quoted numbers but {len(queries)} queries")
        if not quoted and "check" not in claim:
            raise ClaimsError(f"{where}: a claim without numbers needs a 'check'")
    return stores, claims


def check_claim(claim: Mapping[str, Any], root: Path, stores: Mapping[str, xr.Dataset]) -> Outcome:
    """Whether one claim holds: its text is in its file and its queries give its numbers."""
    quoted = list(claim.get("quoted") or [])
    text = claim["text"].format(*quoted)
    problems: list[str] = []
    document = root / claim["file"]
    if not document.exists():
        problems.append(f"{document} does not exist")
    elif _normalize(text) not in _normalize(document.read_text()):
        problems.append(f"the text is not in {claim['file']} (a number or a word differs)")
    namespace: dict[str, Any] = {"np": np, "xr": xr, "ratio": ratio, "k_of": k_of, "exact_steps": exact_steps,
                                 "count": count, "math": math, "json": json}
    values: list[float] = []
    try:
        scope = dict(namespace)

        def evaluate(expression: str) -> Any:
            for name in _names(expression) - set(scope):
                if name in stores:
                    scope[name] = stores[name]
            return eval(expression, scope)  # noqa: S307 (the claims file is part of the repository)

        for name, expression in (claim.get("let") or {}).items():
            scope[name] = evaluate(expression)
        queries = claim.get("query", [])
        queries = [queries] if isinstance(queries, str) else queries
        for q, expression in zip(quoted, queries):
            value = _scalar(evaluate(expression))
            values.append(value)
            tolerance = float(claim.get("tolerance", _half_unit(q)))
            if not abs(value - _number(q)) <= tolerance * (1 + 1e-9):
                problems.append(f"{q} is quoted, the stores give {value:.6g} (tolerance {tolerance:g}): {expression}")
        if "check" in claim and not bool(evaluate(claim["check"])):
            problems.append(f"check is false: {claim['check']}")
    except FileNotFoundError as error:
        problems.append(str(error))
    except Exception as error:  # a query that fails is a failed claim, named
        problems.append(f"query failed: {type(error).__name__}: {error}")
    return Outcome(claim["file"], _normalize(text), not problems, tuple(problems), tuple(values))


def _names(expression: str) -> set[str]:
    """Every name an expression reads, its comprehensions' included."""
    codes, names = [compile(expression, "<claim>", "eval")], set()
    while codes:
        code = codes.pop()
        names.update(code.co_names)
        codes.extend(c for c in code.co_consts if hasattr(c, "co_names"))
    return names


def check_claims(claims_file: Path | str, results: Path | str, root: Path | str | None = None) -> list[Outcome]:
    """Check every claim of ``claims_file`` against the stores under ``results``; documents are read
    relative to ``root`` (default: the claims file's folder)."""
    claims_file = Path(claims_file)
    paths, claims = load_claims(claims_file)
    stores = _Stores(Path(results), paths)
    base = Path(root) if root is not None else claims_file.parent
    return [check_claim(claim, base, stores) for claim in claims]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hessmask.claims", description=__doc__.split("\n")[0])
    parser.add_argument("claims", nargs="?", default="claims.yaml", help="the claims file (default claims.yaml)")
    parser.add_argument("--results", default="results", help="the results folder of the default run")
    args = parser.parse_args(argv)
    try:
        outcomes = check_claims(args.claims, args.results)
    except ClaimsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for outcome in outcomes:
        print(outcome.line())
    failed = sum(not o.ok for o in outcomes)
    print(f"{len(outcomes) - failed} of {len(outcomes)} claims hold" + (f"; {failed} fail" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
