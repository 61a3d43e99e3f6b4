"""Bad input: every problem is refused with one line naming where it is and the fix."""

from __future__ import annotations

import gzip
import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

from mlkernel.data import csv_reader
from mlkernel.data.readers import ReadOptions, read_source
from mlkernel.data.sources import sniff
from mlkernel.errors import ConflictError, UsageError
from mlkernel.kernel import Kernel

Write = Callable[[str, str | bytes], Path]

RAGGED = "a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n"


def _nothing_left(k: Kernel) -> None:
    assert k.data.ls() == []
    collectable = k.gc(dry_run=True)
    assert collectable.removed == [] and collectable.young == []  # young: within the grace
    assert (
        not list(k.context.objects.staging.glob("data-*"))
        if k.context.objects.staging.exists()
        else True
    )


def test_wrong_field_count_fails_with_the_line_number(project: Kernel, write: Write) -> None:
    with pytest.raises(
        UsageError, match=r"line 3 has 1 fields where the header has 2; .*--on-bad-rows skip"
    ):
        project.data.add(write("r.csv", RAGGED), progress=False)
    _nothing_left(project)


def test_skip_drops_bad_rows_and_reports_their_lines(project: Kernel, write: Write) -> None:
    result = project.data.add(write("r.csv", RAGGED), on_bad_rows="skip", progress=False)
    assert result.rows == 3 and [b.line for b in result.bad_rows] == [3, 5]
    assert result.quarantine is None and result.record.properties["bad_rows"] == 2
    assert project.data.open("r").column("a").to_pylist() == [1, 4, 9]


def test_quarantine_keeps_bad_lines_as_an_artifact(project: Kernel, write: Write) -> None:
    result = project.data.add(write("r.csv", RAGGED), on_bad_rows="quarantine", progress=False)
    assert result.quarantine is not None
    assert result.quarantine.ref == "file:r.quarantine@1"
    assert result.record.properties["quarantine"] == "file:r.quarantine@1"
    kept = [json.loads(line) for line in project.load("file:r.quarantine").splitlines()]
    assert [(r["line"], r["text"]) for r in kept] == [(3, "3"), (5, "6,7,8")]


def test_malformed_ndjson_lines_can_be_quarantined(sqlite_project: Kernel, write: Write) -> None:
    text = '{"a": 1}\n{"a": 2\n{"a": 3}\n'
    with pytest.raises(UsageError, match="line 2 is not valid JSON"):
        sqlite_project.data.add(write("e.ndjson", text), progress=False)
    result = sqlite_project.data.add(
        write("e.ndjson", text), on_bad_rows="quarantine", progress=False
    )
    assert result.rows == 2 and [b.line for b in result.bad_rows] == [2]


OPEN_QUOTE = 'a,b\n1,2\n3,"x\n4,5\n7,8\n'


def test_an_unterminated_quote_is_reported_at_its_line(project: Kernel, write: Write) -> None:
    with pytest.raises(UsageError) as refused:
        project.data.add(write("q.csv", OPEN_QUOTE), progress=False)
    message = str(refused.value)
    assert "\n" not in message
    assert re.search(
        r"the quote opened on line 3 is never closed; close it or remove the stray", message
    )
    assert "--on-bad-rows skip (or quarantine)" in message
    _nothing_left(project)
    # A quoted newline that is closed is data, not an error.
    ok = project.data.add(write("ok.csv", 'a,b\n1,"x\ny"\n4,5\n'), progress=False)
    assert project.data.open(ok.ref).column("b").to_pylist() == ["x\ny", "5"]


def test_skip_sets_aside_the_line_that_opens_the_quote(project: Kernel, write: Write) -> None:
    result = project.data.add(write("q.csv", OPEN_QUOTE), on_bad_rows="skip", progress=False)
    assert [(b.line, b.text) for b in result.bad_rows] == [(3, '3,"x')]
    table = project.data.open(result.ref)
    assert table.to_pydict() == {"a": [1, 4, 7], "b": [2, 5, 8]}  # b read as numbers again


def test_quarantine_keeps_open_quotes_with_the_other_bad_rows(
    project: Kernel, write: Write
) -> None:
    text = 'a,b\n1,2\n"x,3\n4,5\n6,7,8\n9,"y\n10,11\n12,13\n'
    result = project.data.add(write("q.csv", text), on_bad_rows="quarantine", progress=False)
    assert result.quarantine is not None
    kept = [json.loads(line) for line in project.load("file:q.quarantine").splitlines()]
    assert [(r["line"], r["text"]) for r in kept] == [(3, '"x,3'), (5, "6,7,8"), (6, '9,"y')]
    assert "quote" in kept[0]["problem"] and "fields" in kept[1]["problem"]
    assert project.data.open(result.ref).column("a").to_pylist() == [1, 4, 10, 12]


def test_an_open_quote_after_a_closed_multiline_value(project: Kernel, write: Write) -> None:
    text = 'a,b\n1,"x\ny"\n3,"open\n4,5\n'
    result = project.data.add(write("q.csv", text), on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == [4]  # the file's line, past the value's break
    assert project.data.open(result.ref).column("b").to_pylist() == ["x\ny", "5"]


def test_open_quotes_in_a_compressed_file_are_set_aside(project: Kernel, write: Write) -> None:
    rows = "".join(f"{i},{i}\n" for i in range(4, 2000))
    text = 'a,b\n1,2\n3,"x\n' + rows + '9,"y\n' + rows
    path = write("q.csv.gz", gzip.compress(text.encode()))
    result = project.data.add(path, on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == [3, 2000]
    assert result.rows == 1 + 2 * len(range(4, 2000))


def test_too_many_open_quotes_are_refused(project: Kernel, write: Write) -> None:
    limit = csv_reader.MAX_OPEN_QUOTES

    def lines(n: int) -> str:  # every other line opens a quote
        return "a,b\n" + "".join(f'{i},"x\n{i},{i}\n' for i in range(n))

    with pytest.raises(UsageError, match=rf"more than {limit} lines open a quote .*line 2"):
        project.data.add(write("q.csv", lines(limit + 1)), on_bad_rows="skip", progress=False)
    result = project.data.add(write("r.csv", lines(limit)), on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == list(range(2, 2 * limit + 2, 2))
    assert result.rows == limit


@pytest.mark.parametrize("text", ['a,"b\n1,2\n3,4\n', 'a,"b\n1,2\n3,"4\n'])
def test_a_quote_open_in_the_header_is_refused(
    sqlite_project: Kernel, write: Write, text: str
) -> None:
    with pytest.raises(UsageError, match=r"quote opened on line 1 is never closed; .* header"):
        sqlite_project.data.add(write("h.csv", text), on_bad_rows="skip", progress=False)


def test_non_utf8_bytes_are_refused_naming_the_line(project: Kernel, write: Write) -> None:
    data = "name,city\nann,Paris\nbob,K\xf6ln\n".encode("latin-1")
    with pytest.raises(
        UsageError, match=r"line 3 holds byte 0xf6, which is not UTF-8 .*--encoding"
    ):
        project.data.add(write("l.csv", data), progress=False)
    result = project.data.add(write("l.csv", data), encoding="latin-1", progress=False)
    assert project.data.open(result.ref).column("city").to_pylist() == ["Paris", "Köln"]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty; nothing to ingest"),
        (b"a,b,c\n", "has a header but no rows"),
        (b"a,b,a\n1,2,3\n", "columns 1 and 3 are both named 'a'; rename one"),
    ],
)
def test_empty_header_only_and_duplicate_columns(
    sqlite_project: Kernel, write: Write, content: bytes, message: str
) -> None:
    with pytest.raises(UsageError, match=message):
        sqlite_project.data.add(write("x.csv", content), progress=False)
    _nothing_left(sqlite_project)


def test_a_json_field_whose_type_changes_names_both_lines(project: Kernel, write: Write) -> None:
    text = '{"id": 1, "v": 1.5}\n{"id": 2, "v": 2}\n{"id": 3, "v": "high"}\n'
    with pytest.raises(UsageError, match=r"field 'v' is a number on line 1 but a string on line 3"):
        project.data.add(write("t.ndjson", text), progress=False)
    array = json.dumps([{"v": 1}, {"v": [1]}])
    with pytest.raises(
        UsageError, match=r"field 'v' is a number on record 1 but an array on record 2"
    ):
        project.data.add(write("t.json", array), progress=False)
    _nothing_left(project)


def test_a_single_10mb_field_is_read(sqlite_project: Kernel, write: Write) -> None:
    big = "x" * (10 << 20)
    path = write("big.csv", f"id,blob\n1,{big}\n2,small\n")
    result = sqlite_project.data.add(path, progress=False)
    table = sqlite_project.data.open(result.ref)
    assert table.num_rows == 2 and len(table.column("blob")[0].as_py()) == 10 << 20
    line = json.dumps({"id": 1, "blob": big}) + "\n"
    assert sqlite_project.data.add(write("big.ndjson", line), progress=False).rows == 1


def test_a_file_that_changes_while_read_is_refused(
    project: Kernel, write: Write, sample: Callable[..., str]
) -> None:
    path = write("grow.csv", sample(5000))

    appended: list[int] = []

    def append_once(done: int, total: int) -> None:
        if not appended:  # the writer strikes after the first block was read
            appended.append(done)
            with path.open("a") as handle:
                handle.write(sample(10, start=9000, header=False))

    with pytest.raises(ConflictError, match="changed while it was being read"):
        project.data.add(path, progress=append_once)
    _nothing_left(project)


def test_the_cli_quarantines_an_open_quote(
    tmp_path: Path, write: Write, capsys: pytest.CaptureFixture[str]
) -> None:
    import mlkernel
    from mlkernel.cli.main import main

    mlkernel.init(tmp_path / "proj", name="proj").close()
    root, path = str(tmp_path / "proj"), str(write("q.csv", OPEN_QUOTE))
    assert main(["-C", root, "data", "add", path]) == 2
    assert "the quote opened on line 3 is never closed" in capsys.readouterr().err
    assert main(["-C", root, "data", "add", path, "--on-bad-rows", "quarantine", "-q"]) == 0
    assert "set aside 1 bad rows into file:q.quarantine@1 (lines 3)" in capsys.readouterr().err


def test_an_open_quote_early_in_a_large_file_loses_no_rows(
    sqlite_project: Kernel, write: Write
) -> None:
    # Over one 4 MiB block: Arrow's reader would drop the rest of the first block unnoticed.
    rows = "".join(f"{i},{i}\n" for i in range(4, 600_000))
    path = write("big.csv", 'a,b\n1,2\n3,"x\n' + rows)
    with pytest.raises(UsageError, match=r"the quote opened on line 3 is never closed"):
        sqlite_project.data.add(path, progress=False)
    result = sqlite_project.data.add(path, on_bad_rows="skip", progress=False)
    assert [b.line for b in result.bad_rows] == [3]
    assert result.rows == 1 + len(range(4, 600_000))


def test_a_quoted_line_break_across_blocks_is_read(tmp_path: Path) -> None:
    lines = [f"{i},{i}\n" for i in range(4, 1500)]
    for cut in range(500, 560):  # one of these puts the value across the 4 KiB block's end
        path = tmp_path / f"m{cut}.csv"
        path.write_text("a,b\n" + "".join(lines[:cut]) + '1,"two\nlines"\n' + "".join(lines[cut:]))
        table = read_source(sniff(path), ReadOptions(block_size=4096)).table
        assert table.num_rows == len(lines) + 1
        assert table.column("b").to_pylist()[cut] == "two\nlines"


@pytest.mark.parametrize("chunk", [7, 64, 1 << 20], ids=["7B", "64B", "1MiB"])
@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_open_quotes_are_found_whatever_the_read_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, chunk: int, compressed: bool
) -> None:
    from mlkernel.data import diagnose

    monkeypatch.setattr(diagnose, "CHUNK", chunk)  # records across many chunks
    lines = ["a,b,c\n"] + [f'{i},"q{i}",{i}\n' for i in range(2, 400)]
    for n in (5, 6, 90, 91, 250, 398):  # line n opens a quote that never closes
        lines[n - 1] = f'{n},"open,{n}\n'
    lines[120 - 1] = '120,"x"y,120\n'  # a quote closed mid-field: Arrow reads xy
    for n in range(300, 310):  # what line 299's quote swallows spans more chunks than are kept
        lines[n - 1] = f"{n},plain,{n}\n"
    lines[299 - 1] = '299,"open,299\n'
    data = "".join(lines).encode()
    path = tmp_path / ("q.csv.gz" if compressed else "q.csv")
    path.write_bytes(gzip.compress(data) if compressed else data)
    found = list(diagnose.open_quotes(sniff(path), ",", "utf8"))
    assert [q.line for q in found] == [5, 6, 90, 91, 250, 299, 398]
    assert [data[q.start : q.end].decode() for q in found] == [lines[q.line - 1] for q in found]


def test_a_long_quoted_value_is_read_whole_and_a_last_line_quote_is_caught(
    project: Kernel, write: Callable[[str, str | bytes], Path]
) -> None:
    """A valid quoted value of 200 KB over several lines is no quote left open (Python's
    csv reader stops at 128 KiB by default); a quote opened on the last line is one."""
    note = "\n".join(["x" * 1000] * 200)
    rows = "".join(f"{i},plain\n" for i in range(5000))
    big = write("big.csv", f'id,note\n0,"{note}"\n{rows}')
    for mode in ("fail", "skip"):
        result = project.data.add(big, name=f"big-{mode}", on_bad_rows=mode, progress=False)
        table = project.data.open(result.ref)
        assert table.num_rows == 5001 and result.bad_rows == []
        assert str(table.schema.field("id").type) == "int64"
        assert table.column("note")[0].as_py() == note

    last = write("last.csv", 'a,b\n1,2\n3,"x\n')
    with pytest.raises(UsageError, match="line 3"):
        project.data.add(last, name="last", progress=False)
    kept = project.data.add(last, name="last-skip", on_bad_rows="skip", progress=False)
    assert [b.line for b in kept.bad_rows] == [3]
    assert project.data.open(kept.ref).column("b").to_pylist() == [2]


def test_reading_without_some_lines_closes_the_file_under_it(tmp_path: Path) -> None:
    import pyarrow as pa

    from mlkernel.data import diagnose

    path = tmp_path / "t.csv"
    path.write_text("a\n1\n")
    inner = pa.OSFile(str(path))
    wrapper = diagnose.Without(inner, [])
    assert wrapper.read() == b"a\n1\n"
    wrapper.close()
    assert inner.closed


# Line numbers are lines, not rows: each bad row below follows something that makes Arrow's
# row count fall behind the line count (a blank line, a quoted value over lines, CRLF).
COUNTED_BY_LINE = {
    "blank lines": ("a,b,c\n1,2,3\n\n\n4,5\n6,7,8\n", [5]),
    "a quoted value over two lines": ('a,b,c\n1,"two\nlines",3\n4,5,6\n7,8\n9,10,11\n', [5]),
    "CRLF and a quoted CRLF": ('a,b,c\r\n1,"x\r\ny",3\r\n4,5\r\n6,7,8\r\n', [4]),
    "a bad row over two lines": ('a,b,c\n1,2,3\n\n"p\nq",4\n5,6,7\n8\n', [4, 7]),
    "a repeated bad row": ("a,b,c\n4,5\n\n4,5\n1,2,3\n4,5\n", [2, 4, 6]),
}


@pytest.mark.parametrize("case", list(COUNTED_BY_LINE))
def test_bad_rows_are_numbered_by_their_first_line(tmp_path: Path, case: str) -> None:
    text, expected = COUNTED_BY_LINE[case]
    path = tmp_path / "t.csv"
    path.write_bytes(text.encode())
    result = read_source(sniff(path), ReadOptions(on_bad_rows="skip"))
    assert [b.line for b in result.bad_rows] == expected
    physical = text.replace("\r\n", "\n").split("\n")
    for bad in result.bad_rows:  # the text reported is what that line starts with
        assert physical[(bad.line or 0) - 1] == bad.text.replace("\r\n", "\n").split("\n")[0]
    with pytest.raises(UsageError, match=rf"line {expected[0]} has \d fields"):
        read_source(sniff(path), ReadOptions())


def test_bad_rows_after_an_open_quote_are_numbered_by_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv"  # line 3 opens a quote never closed; line 6 is short
    path.write_text('a,b\n1,2\n3,"x\n\n4,5\n6\n7,8\n')
    result = read_source(sniff(path), ReadOptions(on_bad_rows="skip"))
    assert [(b.line, b.text) for b in result.bad_rows] == [(3, '3,"x'), (6, "6")]
    assert result.table.column("a").to_pylist() == [1, 4, 7]


def test_bad_rows_in_a_compressed_file_are_numbered_by_line(tmp_path: Path) -> None:
    path = tmp_path / "t.csv.gz"
    path.write_bytes(gzip.compress(b'a,b\n1,"x\ny"\n\n2\n3,4\n'))
    result = read_source(sniff(path), ReadOptions(on_bad_rows="skip"))
    assert [b.line for b in result.bad_rows] == [5]
