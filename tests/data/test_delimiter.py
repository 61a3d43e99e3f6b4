"""CSV files separated by something other than a comma: ``;`` (common in Europe), ``|``
and tab, given with ``--delimiter`` or read off a header that has no comma."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

import mlkernel
from mlkernel.errors import UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]


def _columns(k: Kernel, ref: str) -> dict[str, list[object]]:
    return k.data.open(ref).to_pydict()  # type: ignore[no-any-return]


def test_a_semicolon_file_is_detected_and_said_so(project: Kernel, write: Write) -> None:
    result = project.data.add(write("s.csv", "a;b\n1;2\n3;4\n"), progress=False)
    assert _columns(project, result.ref) == {"a": [1, 3], "b": [2, 4]}
    props = result.record.properties
    assert props["options"]["delimiter"] == ";" and props["delimiter_detected"] is True


@pytest.mark.parametrize(
    ("name", "text", "given"),
    [
        ("p.csv", "a|b\n1|x\n2|y\n", "|"),
        ("p2.csv", "a|b\n1|x\n2|y\n", "pipe"),
        ("t.csv", "a\tb\n1\tx\n2\ty\n", "tab"),  # a tab file named .csv
        ("t2.csv", "a\tb\n1\tx\n2\ty\n", "\\t"),  # as a shell passes '\t'
        ("s.csv", "a;b\n1;x\n2;y\n", ";"),
    ],
)
def test_a_given_delimiter_is_used(
    project: Kernel, write: Write, name: str, text: str, given: str
) -> None:
    result = project.data.add(write(name, text), delimiter=given, progress=False)
    assert _columns(project, result.ref) == {"a": [1, 2], "b": ["x", "y"]}
    assert "delimiter_detected" not in result.record.properties


@pytest.mark.parametrize("text", ["a|b\n1|x\n2|y\n", "a\tb\n1\tx\n2\ty\n"])
def test_pipe_and_tab_files_named_csv_are_detected(
    project: Kernel, write: Write, text: str
) -> None:
    result = project.data.add(write("f.csv", text), progress=False)
    assert _columns(project, result.ref) == {"a": [1, 2], "b": ["x", "y"]}


def test_quoted_fields_keep_the_delimiter(project: Kernel, write: Write) -> None:
    text = 'id;note\n1;"a;b"\n2;"x\ny;z"\n3;plain\n'
    for ref in (
        project.data.add(write("q.csv", text), progress=False).ref,
        project.data.add(write("q2.csv", text), delimiter=";", progress=False).ref,
    ):
        assert _columns(project, ref) == {"id": [1, 2, 3], "note": ["a;b", "x\ny;z", "plain"]}


def test_an_unclear_header_is_refused_naming_the_option(project: Kernel, write: Write) -> None:
    # "a;b" over rows of one field: a one-column file or a broken ';' file; never guessed
    with pytest.raises(UsageError, match=r"header has no comma.*--delimiter ';'"):
        project.data.add(write("u.csv", "a;b\nx\ny\n"), progress=False)
    with pytest.raises(UsageError, match=r"--delimiter ';'"):  # two candidates split alike
        project.data.add(write("two.csv", "a;b|c\n1;2|3\n"), progress=False)
    assert project.data.ls() == []
    # the fix the message names works: a comma reads each line as one column
    one = project.data.add(write("u.csv", "a;b\nx\ny\n"), delimiter=",", progress=False)
    assert _columns(project, one.ref) == {"a;b": ["x", "y"]}


def test_a_comma_file_stays_as_it_was(project: Kernel, write: Write) -> None:
    result = project.data.add(write("c.csv", "a,b;c\n1,x;y\n"), progress=False)
    assert _columns(project, result.ref) == {"a": [1], "b;c": ["x;y"]}
    assert "delimiter" not in result.record.properties["options"]


def test_a_bad_delimiter_is_refused(project: Kernel, write: Write) -> None:
    path = write("s.csv", "a;b\n1;2\n")
    for wrong in ("ab", '"', "", "\n"):
        with pytest.raises(UsageError, match="not one character"):
            project.data.add(path, delimiter=wrong, progress=False)
    with pytest.raises(UsageError, match="applies to CSV and TSV files"):
        project.data.add(write("j.json", '[{"a": 1}]'), delimiter=";", progress=False)
    assert project.data.ls() == []


def test_bad_rows_are_skipped_and_numbered_with_the_delimiter(
    project: Kernel, write: Write
) -> None:
    text = 'a;b\n1;2\n3\n4;"x\ny"\n5;6;7\n8;9\n'
    with pytest.raises(UsageError, match=r"line 3 has 1 fields where the header has 2"):
        project.data.add(write("r.csv", text), delimiter=";", progress=False)
    result = project.data.add(write("r.csv", text), on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == [3, 6]
    assert _columns(project, result.ref) == {"a": [1, 4, 8], "b": ["2", "x\ny", "9"]}


def test_an_open_quote_is_found_with_the_delimiter(project: Kernel, write: Write) -> None:
    text = 'a;b\n1;2\n3;"open\n4;5\n'
    with pytest.raises(UsageError, match=r"quote opened on line 3 is never closed"):
        project.data.add(write("o.csv", text), delimiter=";", progress=False)
    result = project.data.add(write("o.csv", text), on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == [3]
    assert _columns(project, result.ref) == {"a": [1, 4], "b": [2, 5]}


def test_the_delimiter_decides_whether_a_file_is_unchanged(project: Kernel, write: Write) -> None:
    path = write("s.csv", "a;b\n1;2\n3;4\n")
    first = project.data.add(path, progress=False)
    assert not project.data.add(path, progress=False).created
    assert not project.data.add(path, delimiter="semicolon", progress=False).created
    other = project.data.add(path, delimiter=",", progress=False)  # one column: new content
    assert other.created and other.record.version == first.record.version + 1
    assert other.record.properties["options"]["delimiter"] == ","


def test_a_glob_of_files_with_different_delimiters_is_refused(
    project: Kernel, write: Write
) -> None:
    write("g/a.csv", "a;b\n1;2\n")
    write("g/b.csv", "a,b\n3,4\n")
    with pytest.raises(UsageError, match="different delimiters"):
        project.data.add(write("g/a.csv", "a;b\n1;2\n").parent, name="g", progress=False)
    write("h/a.csv", "a;b\n1;2\n")
    both = project.data.add(write("h/b.csv", "a;b\n3;4\n").parent, name="h", progress=False)
    assert _columns(project, both.ref)["b"] == [2, 4]


def test_cli_reads_a_semicolon_file_and_says_how(tmp_path: Path, write: Write) -> None:
    mlkernel.init(tmp_path / "proj", name="proj").close()
    mlk = [str(Path(sys.executable).parent / "mlk"), "-C", str(tmp_path / "proj")]
    path = write("s.csv", "a;b\n1;2\n3;4\n")
    done = subprocess.run([*mlk, "data", "add", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "2 rows x 2 columns" in done.stdout
    assert "separated by ';'" in done.stderr
    bad = write("u.csv", "a;b\nx\n")
    done = subprocess.run([*mlk, "data", "add", str(bad)], capture_output=True, text=True)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1 and "--delimiter ';'" in done.stderr
    done = subprocess.run(
        [*mlk, "data", "add", str(bad), "--delimiter", ","], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("at", [3, 150, 1000, 1990])
def test_a_stray_quote_after_the_delimiter_loses_no_row(tmp_path: Path, at: int) -> None:
    """The block check (a block whose parse ends inside a quote loses the rest of its rows
    in Arrow's fast parse, without a word) opens quotes at field starts: after the file's
    delimiter, not a comma."""
    from mlkernel.data.readers import ReadOptions, read_source
    from mlkernel.data.sources import sniff

    lines = ["a;b;c\n"] + [f"{i};{i * 2};w{i}\n" for i in range(2, 2001)]
    lines[at - 1] = f'{at};"x;1\n'
    path = tmp_path / "t.csv"
    path.write_text("".join(lines), newline="")
    options = ReadOptions(block_size=4096, delimiter=";")
    with pytest.raises(UsageError, match=f"quote opened on line {at} is never closed"):
        read_source(sniff(path), options)
    skip = ReadOptions(block_size=4096, delimiter=";", on_bad_rows="skip")
    result = read_source(sniff(path), skip)
    assert [b.line for b in result.bad_rows] == [at]
    assert result.table.num_rows == 1998


def test_decimal_commas_are_read_as_numbers_when_asked(project: Kernel, write: Write) -> None:
    path = write("e.csv", "a;b;c\n1,5;2;x,y\n-3,25;4;z\n")
    plain = project.data.add(path, progress=False)  # not asked: the text stays as it is
    assert _columns(project, plain.ref)["a"] == ["1,5", "-3,25"]
    result = project.data.add(path, decimal=",", progress=False)
    assert result.created and result.record.properties["options"]["decimal"] == ","
    assert _columns(project, result.ref) == {"a": [1.5, -3.25], "b": [2, 4], "c": ["x,y", "z"]}
    with pytest.raises(UsageError, match="decimal comma needs another field separator"):
        project.data.add(write("c.csv", "a,b\n1,2\n"), decimal=",", progress=False)
    with pytest.raises(UsageError, match=r"neither '\.' nor ','"):
        project.data.add(path, decimal=";", progress=False)
