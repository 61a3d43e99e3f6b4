"""CSV types: parsing with the first block's types gives exactly what Arrow's inference gives.

The reader infers types on the first block only, then parses the file with them, and lets
Arrow infer throughout when a later block does not fit. These files change type after the
first block; each must read as plain ``pyarrow.csv.read_csv`` reads it.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlkernel.data import csv_reader
from mlkernel.data.readers import ReadOptions, read_source
from mlkernel.data.sources import sniff

BLOCK = 4096  # small blocks, so that these files span many
LIMIT = 20  # categories per block


def _rows(n: int, start: int = 0) -> str:
    return "".join(
        f"{i},{i * 0.5},k{i % 4},2024-01-01 00:00:{i % 60:02d}Z\n" for i in range(start, start + n)
    )


CASES = {
    "nothing changes": _rows(2000),
    "an int column gets a float": _rows(1500) + "7.25,1.0,k1,2024-01-01 00:00:00Z\n" + _rows(9),
    "an int column gets text": _rows(1500) + "n/a?,1.0,k1,2024-01-01 00:00:00Z\n" + _rows(9),
    "an int column gets an empty field": _rows(1500) + ",1.0,k1,2024-01-01 00:00:00Z\n",
    "a timestamp gets fractions": _rows(1500) + "1,1.0,k1,2024-01-01 00:00:00.25Z\n",
    "a category outgrows the limit": _rows(1500)
    + "".join(f"{i},1.0,u{i},2024-01-01 00:00:00Z\n" for i in range(LIMIT * 2))
    + _rows(1500),
    "a category gains a value": _rows(1500) + "1,1.0,new,2024-01-01 00:00:00Z\n" + _rows(9),
}


@pytest.mark.parametrize("case", list(CASES))
def test_the_table_is_what_arrow_inference_reads(
    tmp_path: Path, head_bytes: int, case: str
) -> None:
    import pyarrow.csv as pacsv

    path = tmp_path / "t.csv"
    path.write_text("id,price,kind,at\n" + CASES[case])
    options = ReadOptions(block_size=BLOCK, max_categories=LIMIT)
    result = read_source(sniff(path), options)
    expected = pacsv.read_csv(
        path,
        read_options=pacsv.ReadOptions(block_size=BLOCK),
        convert_options=pacsv.ConvertOptions(
            auto_dict_encode=True, auto_dict_max_cardinality=LIMIT, strings_can_be_null=False
        ),
    ).unify_dictionaries()
    assert result.table.schema == expected.schema
    assert result.table.equals(expected)


@pytest.mark.parametrize("eol", ["\n", "\r\n"], ids=["LF", "CRLF"])
@pytest.mark.parametrize("case", list(CASES))
def test_whole_blocks_are_not_parsed_again(tmp_path: Path, case: str, eol: str) -> None:
    """No block ends inside a quote, so the slower parse that follows quotes is not used."""
    path = tmp_path / "t.csv"
    text = "id,price,kind,at\n" + CASES[case].replace(",k", ',"k').replace(",2024", '",2024')
    path.write_bytes(text.replace("\n", eol).encode())
    source, options = sniff(path), ReadOptions(block_size=BLOCK, max_categories=LIMIT)
    how = csv_reader._Pass(BLOCK)
    table, _ = csv_reader._csv_table(source, options, how)
    assert table.column(0).num_chunks > 2
    assert csv_reader._blocks_whole(source, how, ",")


def test_a_block_that_lost_its_end_is_noticed(tmp_path: Path) -> None:
    import pyarrow.csv as pacsv

    path = tmp_path / "t.csv"  # the quote on line 2 is never closed
    path.write_text('id,price,kind,at\n1,2,"k\n' + _rows(2000))
    source, options = sniff(path), ReadOptions(block_size=BLOCK, on_bad_rows="skip")
    table = pacsv.read_csv(path, read_options=pacsv.ReadOptions(block_size=BLOCK))
    assert table.num_rows < 2000  # Arrow dropped the rest of the first block
    assert not csv_reader._blocks_whole(source, csv_reader._Pass(BLOCK), ",")
    result = read_source(source, options)
    assert result.table.num_rows == 2000 and [b.line for b in result.bad_rows] == [2]


LAYOUTS = {
    "repeated rows": lambda i: "1,2,3\n",
    "distinct rows": lambda i: f"{i},{i * 2},w{i}\n",
    "quoted values": lambda i: f'{i},"a, {i}",""\n',
    "CRLF, quoted": lambda i: f'{i},"x""{i}",1\r\n',
}


@pytest.mark.parametrize("at", [3, 150, 1000, 1990])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_a_stray_quote_loses_no_row(tmp_path: Path, layout: str, at: int) -> None:
    """Whatever the rows around it (a lost block's end once went unnoticed when rows
    repeat), a quote never closed is refused under ``fail``; under ``skip`` only its line
    is set aside."""
    from mlkernel.errors import UsageError

    lines = ["a,b,c\n"] + [LAYOUTS[layout](i) for i in range(2, 2001)]
    lines[at - 1] = f'{at},"x,1\n'
    path = tmp_path / "t.csv"
    path.write_text("".join(lines), newline="")
    with pytest.raises(UsageError, match=f"quote opened on line {at} is never closed"):
        read_source(sniff(path), ReadOptions(block_size=BLOCK))
    result = read_source(sniff(path), ReadOptions(block_size=BLOCK, on_bad_rows="skip"))
    assert [b.line for b in result.bad_rows] == [at]
    assert result.table.num_rows == 1998


@pytest.mark.parametrize("compression", ["gzip", "bz2"])
def test_a_compressed_file_loses_no_block_to_a_quote(tmp_path: Path, compression: str) -> None:
    """Blocks of a decompressed file cannot be checked afterwards, so they are cut between
    rows: a quoted line break across a cut is read whole, and a quote never closed is
    refused under ``fail`` instead of taking the rest of its block with it."""
    import bz2
    import gzip

    import pyarrow.csv as pacsv

    from mlkernel.errors import UsageError

    pack = {"gzip": gzip.compress, "bz2": bz2.compress}[compression]
    suffix = {"gzip": "gz", "bz2": "bz2"}[compression]
    broken = 'id,price,kind,at\n1,2,"k\n' + _rows(2000)
    plain = tmp_path / "broken.csv"
    plain.write_text(broken)
    assert pacsv.read_csv(plain, read_options=pacsv.ReadOptions(block_size=BLOCK)).num_rows < 2000

    packed = tmp_path / f"broken.csv.{suffix}"
    packed.write_bytes(pack(broken.encode()))
    with pytest.raises(UsageError, match="line 2"):
        read_source(sniff(packed), ReadOptions(block_size=BLOCK))
    skipped = read_source(sniff(packed), ReadOptions(block_size=BLOCK, on_bad_rows="skip"))
    assert skipped.table.num_rows == 2000 and [b.line for b in skipped.bad_rows] == [2]

    quoted = "id,price,kind,at\n" + _rows(150) + '150,1.0,"two\nlines",2024-01-01 00:00:00Z\n'
    quoted += _rows(2000, start=151)
    whole = tmp_path / f"quoted.csv.{suffix}"
    whole.write_bytes(pack(quoted.encode()))
    table = read_source(sniff(whole), ReadOptions(block_size=BLOCK)).table
    assert table.num_rows == 2151
    assert table.column("kind").to_pylist()[150] == "two\nlines"


# -- the block check against a byte-by-byte model of Arrow's chunking and quoting -------


def _ends_inside_quote(block: bytes, *, bom: bool) -> bool:
    """Arrow's quoting, one byte at a time: a quote opens only at a field's start; inside,
    ``""`` is a quote and a lone ``"`` closes; after that, quotes are text."""
    if bom and block.startswith(b"\xef\xbb\xbf"):
        block = block[3:]
    inside, field_start, i = False, True, 0
    while i < len(block):
        byte = block[i : i + 1]
        if inside:
            if byte == b'"':
                if block[i + 1 : i + 2] == b'"':
                    i += 1  # an escaped quote
                else:
                    inside = False
        elif byte == b'"' and field_start:
            inside, field_start = True, False
        else:
            field_start = byte in (b",", b"\n", b"\r")
        i += 1
    return inside


def _model_blocks_whole(data: bytes, block: int) -> bool:
    """What :func:`csv_reader._blocks_whole` must answer, read off the whole file at once."""
    carry, position = b"", 0
    while position < len(data):
        chunk = data[position : position + block]
        first = position == 0
        position += len(chunk)
        cut = len(chunk)
        if len(chunk) == block:
            cut = max(chunk.rfind(b"\n"), chunk.rfind(b"\r")) + 1
            if cut == 0:
                return False
        breaks = [i for i in (chunk.find(b"\n"), chunk.find(b"\r")) if i >= 0]
        ends = [min(breaks, default=len(chunk) - 1) + 1, cut] if carry else [cut]
        if any(_ends_inside_quote(carry + chunk[:end], bom=first) for end in ends):
            return False
        carry = chunk[cut:]
    return not _ends_inside_quote(carry, bom=False)


_FIELDS = [
    "1",
    "2.5",
    "",
    '"a"',
    '"a,b"',
    '"x""y"',
    '"two\nlines"',
    '"cr\rlf"',
    '""',
    'x"y',
    '"open',
    '"""',
]


@settings(
    max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    rows=st.lists(
        st.lists(st.sampled_from(_FIELDS), min_size=3, max_size=3), min_size=1, max_size=120
    ),
    eol=st.sampled_from(["\n", "\r\n", "\r"]),
    block=st.sampled_from([64, 100, 256]),
    tail=st.sampled_from([8, 32, 1 << 16]),
)
def test_the_block_check_answers_as_the_model(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    rows: list[list[str]],
    eol: str,
    block: int,
    tail: int,
) -> None:
    """Small blocks and short windows, so that the windows grow and chunks are read
    whole; quoted line breaks, escaped quotes and quotes never closed in every place."""
    monkeypatch.setattr(csv_reader, "_TAIL", tail)
    data = ("a,b,c" + eol + "".join(",".join(r) + eol for r in rows)).encode()
    path = tmp_path / "model.csv"
    path.write_bytes(data)
    whole = csv_reader._blocks_whole(sniff(path), csv_reader._Pass(block), ",")
    assert whole == _model_blocks_whole(data, block)
    if whole:  # then Arrow's fast parse reads what the parse that follows quotes reads
        assert _arrow(path, block, quoted_breaks=False) == _arrow(path, block, quoted_breaks=True)


def _arrow(path: Path, block: int, *, quoted_breaks: bool) -> object:
    import pyarrow as pa
    import pyarrow.csv as pacsv

    try:
        return pacsv.read_csv(
            path,
            read_options=pacsv.ReadOptions(block_size=block),
            parse_options=pacsv.ParseOptions(newlines_in_values=quoted_breaks),
            convert_options=pacsv.ConvertOptions(column_types=dict.fromkeys("abc", pa.string())),
        ).to_pylist()
    except pa.ArrowInvalid as exc:
        return type(exc)
