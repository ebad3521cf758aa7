"""The claims file: each quoted number of the docs against the stores of the default run."""

import os
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from hessmask import claims as C
from hessmask.store import write_dataset

ROOT = Path(__file__).resolve().parents[1]
CLAIMS = ROOT / "claims.yaml"
#: the default run's results folder: results/, or HESSMASK_CLAIMS_RESULTS for a run made elsewhere
RESULTS = Path(os.environ.get("HESSMASK_CLAIMS_RESULTS", ROOT / "results"))

CLAIMS_TEXT = """
stores:
  m: toy.zarr
claims:
  - file: doc.md
    text: "the ratio is {} to {} times chance"
    quoted: ["2.6", "3.3"]
    let:
      r: m["overlap"] / m["chance"]
    query: [r.min(), r.max()]
  - file: doc.md
    text: "and largest at step 40"
    check: int(m["overlap"].idxmax("step")) == 40
"""


@pytest.fixture()
def toy(tmp_path):
    ds = xr.Dataset({"overlap": ("step", [0.13, 0.165, 0.14]), "chance": 0.05}, coords={"step": [0, 40, 100]})
    write_dataset(ds, tmp_path / "results" / "toy.zarr")
    (tmp_path / "doc.md").write_text("We find that\nthe ratio is 2.6 to\n3.3 times chance, and largest at step 40.\n")
    (tmp_path / "claims.yaml").write_text(CLAIMS_TEXT)
    return tmp_path


def test_claims_hold_and_break_when_a_number_is_edited(toy):
    outcomes = C.check_claims(toy / "claims.yaml", toy / "results")
    assert [o.ok for o in outcomes] == [True, True]
    np.testing.assert_allclose(outcomes[0].values, [2.6, 3.3])
    doc = toy / "doc.md"
    doc.write_text(doc.read_text().replace("3.3", "3.4"))  # the document says another number
    outcome = C.check_claims(toy / "claims.yaml", toy / "results")[0]
    assert not outcome.ok and "not in doc.md" in outcome.problems[0]
    (toy / "claims.yaml").write_text(CLAIMS_TEXT.replace('"3.3"', '"3.4"'))  # both say it, the store does not
    outcome = C.check_claims(toy / "claims.yaml", toy / "results")[0]
    assert not outcome.ok and outcome.problems == ("3.4 is quoted, the stores give 3.3 (tolerance 0.05): r.max()",)


def test_a_false_comparison_and_a_missing_store_fail_by_name(toy):
    (toy / "claims.yaml").write_text(CLAIMS_TEXT.replace("== 40", "== 0"))
    assert not C.check_claims(toy / "claims.yaml", toy / "results")[1].ok
    outcome = C.check_claims(toy / "claims.yaml", toy / "elsewhere")[0]
    assert not outcome.ok and "toy.zarr" in outcome.problems[-1] and "does not exist" in outcome.problems[-1]


def test_rounding_tolerance_is_half_a_unit_of_the_last_digit():
    assert C._half_unit("2.6") == pytest.approx(0.05)
    assert C._half_unit("0.0060") == pytest.approx(5e-5)
    assert C._half_unit("94") == pytest.approx(0.5)
    assert C._half_unit("1.2e-5") == pytest.approx(5e-7)


@pytest.mark.parametrize(("edit", "message"), [
    (('quoted: ["2.6", "3.3"]', 'quoted: ["2.6"]'), "the text has 2 '{}' but 1 quoted"),
    (("    check:", "    chek:"), "unknown key(s) ['chek']"),
    (('quoted: ["2.6", "3.3"]', "quoted: [2.6, 3.3]"), "must be strings"),
])
def test_malformed_claims_file_is_named(toy, edit, message):
    (toy / "claims.yaml").write_text(CLAIMS_TEXT.replace(*edit))
    with pytest.raises(C.ClaimsError, match=re.escape(message)):
        C.check_claims(toy / "claims.yaml", toy / "results")


def test_claims_file_is_well_formed():
    stores, claims = C.load_claims(CLAIMS)
    assert claims and set(stores)
    documents = {c["file"] for c in claims}
    assert {"README.md", "docs/science.md"} <= documents


@pytest.mark.skipif(not (RESULTS / "dof" / "mlp_mnist5k.zarr").exists() or
                    not (RESULTS / "mlp_mnist5k" / "metrics.zarr").exists(),
                    reason=f"no default run in {RESULTS} (make run, or set HESSMASK_CLAIMS_RESULTS): "
                           "the claims are checked against its stores")
def test_every_claim_holds_on_the_default_run(tmp_path):
    failed = [o.line() for o in C.check_claims(CLAIMS, RESULTS) if not o.ok]
    assert not failed, "\n".join(failed)
    # the same documents with one quoted number edited: exactly that claim fails
    import shutil

    for name in {c["file"] for c in C.load_claims(CLAIMS)[1]}:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, tmp_path / name)
    readme = tmp_path / "README.md"
    readme.write_text(readme.read_text().replace("0.0060 of the exact one", "0.0050 of the exact one", 1))
    outcomes = C.check_claims(CLAIMS, RESULTS, root=tmp_path)
    assert [o.text for o in outcomes if not o.ok] == [
        "the sketch's mask overlap stays within 0.0060 of the exact one at every exactly solved step"]


def test_helpers_select_methods_by_name():
    """ratio and exact_steps select the `method` dimension by a dict: `.sel(method=...)` would be
    xarray's fill-method keyword."""
    steps, ks = [0, 10, 40], [1, 2, 5]
    overlap = np.arange(2 * 2 * 3 * 3, dtype=float).reshape(2, 2, 3, 3) / 100
    overlap[0, :, 1, :] = np.nan  # exact not solved at step 10
    metrics = xr.Dataset({"overlap": (("method", "split", "step", "k"), overlap), "chance": ("k", [0.01, 0.02, 0.05])},
                         coords={"method": ["exact", "seigh"], "split": ["train", "test"], "step": steps, "k": ks},
                         attrs={"D": 100})
    assert C.k_of(metrics, 0.05) == 5
    r = C.ratio(metrics, "seigh", "test", 0.05)
    np.testing.assert_allclose(r.values, overlap[1, 1, :, 2] / 0.05)
    assert list(C.ratio(metrics, "exact", "train", 0.05)["step"].values) == [0, 40]
    assert C.exact_steps(metrics) == [0, 40]
    assert C.count(r > 0.5) == int(np.sum(overlap[1, 1, :, 2] / 0.05 > 0.5))
