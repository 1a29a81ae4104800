"""gdrun-labs' table: named labs update an earlier table instead of replacing it, docs/labs.md is written
by the command, and an MNIST of the wrong size is said as such."""

import csv

import pytest

from gdrun.commands.labs import main as labs_command
from gdrun.errors import GdrunError
from gdrun.labs import compare as labs
from gdrun.training.datasets.idx import write_mnist_like
from helpers import REPO


def test_named_labs_keep_the_other_rows_of_an_earlier_table(tmp_path):
    out = tmp_path / "labs"
    assert labs_command(["slope", "linreg_bgd", "--out", str(out), "--jobs", "1"]) == 0
    assert labs_command(["slope", "--out", str(out), "--jobs", "1"]) == 0
    rows = list(csv.DictReader(open(out / "labs.csv")))
    assert [(r["lab"], r["status"]) for r in rows] == [("slope", "match"), ("linreg_bgd", "match")]
    assert "| linreg_bgd |" in (out / "labs.md").read_text()


def test_gdrun_labs_writes_the_docs_table_between_its_lines(tmp_path):
    page = tmp_path / "labs.md"
    page.write_text(f"# Labs\n\nbefore\n{labs.DOCS_BEGIN}\nold table\n{labs.DOCS_END}\n\nafter\n")
    assert labs_command(["slope", "--out", str(tmp_path / "out"), "--jobs", "1", "--docs", str(page)]) == 0
    text = page.read_text()
    assert "old table" not in text and text.startswith("# Labs\n\nbefore\n") and text.endswith("\n\nafter\n")
    assert "| [slope](#slope) | cost 147.35 → 0.608668 (4 iterations); w -3.17257 | the same |" in text
    assert "Which numbers may vary by machine" in text
    page.write_text("no lines to write between\n")
    with pytest.raises(GdrunError, match="no lines"):
        labs.write_docs(page, [], "")


def test_the_shipped_docs_page_has_the_commands_table():
    text = (REPO / "docs" / "labs.md").read_text()
    table = text[text.index(labs.DOCS_BEGIN) : text.index(labs.DOCS_END)]
    assert all(f"| [{name}](#{name}) |" in table for name in labs.LABS)
    assert "may vary by machine" in table


def test_an_mnist_of_the_wrong_size_is_said_not_blamed_on_the_shuffled_order(tmp_path):
    write_mnist_like(tmp_path / "data", n_train=30, n_test=10)
    row = labs.run_mnist(labs.LABS["mnist_logistic"], tmp_path / "out", tmp_path / "data", plots=False)
    assert row.status == "skipped"
    assert "has 30 training and 10 test images, not the official 60,000 and 10,000" in row.agreement
    assert "shuffled" not in row.agreement
