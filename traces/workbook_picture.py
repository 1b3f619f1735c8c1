"""Draw the README's picture of the seed workbook, as LibreOffice Calc lays it out.

    python traces/workbook_picture.py      (needs LibreOffice's soffice and PyMuPDF: pip install pymupdf)

Calc prints traces/seed_question.xlsx to PDF (every column on a page's width, as the workbook asks)
and the top of its first page, the inputs and the forget gate, becomes traces/seed_question_xlsx.png.
It is a picture for the README, not a golden: nothing checks it, so redraw it when the layout changes.
"""
import pathlib
import shutil
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).parent


def main() -> None:
    import pymupdf

    soffice = shutil.which("soffice") or shutil.which("libreoffice")
    if soffice is None:
        sys.exit("needs LibreOffice (soffice)")
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([soffice, f"-env:UserInstallation=file://{folder}/profile", "--headless", "--convert-to",
                        "pdf", "--outdir", folder, str(HERE / "seed_question.xlsx")], check=True,
                       capture_output=True)
        page = pymupdf.open(pathlib.Path(folder) / "seed_question.pdf")[0]
        title, last = page.search_for("lstmtrace: one")[0], page.search_for("forget_act")[0]
        right = max(w[2] for w in page.get_text("words") if abs(w[1] - last.y0) < 2)  # forget_act's last number
        top = pymupdf.Rect(title.x0 - 6, title.y0 - 6, right + 6, last.y1 + 6)
        page.get_pixmap(dpi=220, clip=top).save(HERE / "seed_question_xlsx.png")
    print("wrote traces/seed_question_xlsx.png", file=sys.stderr)


if __name__ == "__main__":
    main()
