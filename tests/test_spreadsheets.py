"""Both CSV layouts open in LibreOffice Calc with every value a number, exactly as written.

Calc reads each CSV with the import settings the README gives (comma-separated,
UTF-8, language English (USA) so that '.' is the decimal point whatever the
machine's locale), converts it to flat ODS, and the test reads the numbers back
from the XML. Spreadsheets keep 15 significant digits (Calc writes no more into
ODS, and Excel shows no more), so the numbers are compared to 1e-14 relative;
the CSV itself holds every digit, for pandas and read_trace. Skipped where LibreOffice (soffice) is not installed; .ci/run
installs Debian's libreoffice-calc-nogui.
"""
import os
import shutil
import subprocess
import xml.etree.ElementTree as ET

import numpy as np
import pytest

import lstmtrace
from lstmtrace import Parameters

SOFFICE = shutil.which("soffice") or shutil.which("libreoffice")
pytestmark = pytest.mark.skipif(SOFFICE is None, reason="LibreOffice (soffice) is not installed")

# separator 44 (,), text delimiter 34 ("), charset 76 (UTF-8), first line 1, no column types,
# language 1033 (English, USA): the same settings as the README's Text Import dialog
CSV_IMPORT = "CSV:44,34,76,1,,1033"
NS = {"table": "urn:oasis:names:tc:opendocument:xmlns:table:1.0",
      "office": "urn:oasis:names:tc:opendocument:xmlns:office:1.0",
      "text": "urn:oasis:names:tc:opendocument:xmlns:text:1.0"}


def _cells(fods):
    """The first sheet's rows as lists of (type, value) pairs, repeats expanded."""
    rows = []
    for row in ET.parse(fods).getroot().iter(f"{{{NS['table']}}}table-row"):
        cells = []
        for cell in row.findall("table:table-cell", NS):
            kind = cell.get(f"{{{NS['office']}}}value-type")
            value = cell.get(f"{{{NS['office']}}}value") if kind == "float" else \
                "".join("".join(p.itertext()) for p in cell.findall("text:p", NS))
            repeat = int(cell.get(f"{{{NS['table']}}}number-columns-repeated", "1"))
            cells.extend([(kind, value)] * min(repeat, 64))
        while cells and cells[-1][0] is None:
            cells.pop()
        rows.extend([cells] * int(row.get(f"{{{NS['table']}}}number-rows-repeated", "1")) if cells else [])
    return rows


def _through_calc(tmp_path, csv, lang):
    out = tmp_path / "out"
    env = dict(os.environ, LANG=lang, LC_ALL=lang)
    result = subprocess.run([SOFFICE, f"-env:UserInstallation=file://{tmp_path}/profile", "--headless",
                             f"--infilter={CSV_IMPORT}", "--convert-to", "fods", "--outdir", str(out), str(csv)],
                            capture_output=True, text=True, timeout=300, env=env)
    fods = out / (csv.stem + ".fods")
    assert fods.exists(), result.stdout + result.stderr
    return _cells(fods)


@pytest.fixture(scope="module")
def trace():
    """Values of every magnitude and sign, E ≠ H so the wide layout has blanks."""
    xs = np.array([[1e-300, -2.5, 3.0], [1 / 3, 4e10, -7.25e-5]])
    return lstmtrace.run(Parameters.random(3, 2, seed=1).set("forget", "b", "1e-17,-123456.789"), xs)


@pytest.mark.parametrize("lang", ["C.UTF-8", "de_DE.UTF-8"])
def test_long_layout_values_are_numbers(tmp_path, trace, lang):
    trace.to_csv(tmp_path / "long.csv")
    rows = _through_calc(tmp_path, tmp_path / "long.csv", lang)
    assert [v for _, v in rows[0]] == ["step", "gate", "quantity", "unit", "value"]
    body = rows[1:]
    assert len(body) == len(trace.frame)
    assert {kind for row in body for kind, _ in (row[0], row[3], row[4])} == {"float"}
    assert {kind for row in body for kind, _ in (row[1], row[2])} == {"string"}
    values = np.array([float(row[4][1]) for row in body])
    np.testing.assert_allclose(values, trace.frame["value"].to_numpy(), rtol=1e-14, atol=0)


@pytest.mark.parametrize("lang", ["C.UTF-8", "de_DE.UTF-8"])
def test_wide_layout_values_are_numbers(tmp_path, trace, lang):
    trace.to_csv(tmp_path / "wide.csv", layout="wide")
    rows = _through_calc(tmp_path, tmp_path / "wide.csv", lang)
    assert [v for _, v in rows[0]] == ["step", "gate", "quantity", "u0", "u1", "u2"]
    wide = trace.wide()
    assert len(rows) - 1 == len(wide)
    for row, (_, expected) in zip(rows[1:], wide.iterrows()):
        numbers = [float(v) for kind, v in row[3:] if kind == "float"]
        assert all(kind in ("float", None) for kind, _ in row[3:])
        np.testing.assert_allclose(numbers, expected[3:].dropna().to_numpy(dtype=float), rtol=1e-14, atol=0)
