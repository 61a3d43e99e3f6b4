"""CSV and TSV: Arrow's multi-threaded reader, with types from the first rows, and the
quotes that are never closed set aside (see :func:`read_csv`)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from mlkernel.data import diagnose, infer, readers
from mlkernel.data.readers import (
    BadRow,
    ParseError,
    ReadOptions,
    first_line,
    memory_pool,
    open_input,
)
from mlkernel.data.sources import Source, Watch
from mlkernel.errors import UsageError

__all__ = ["MAX_OPEN_QUOTES", "read_csv"]

MAX_OPEN_QUOTES = 100  # lines set aside for quotes never closed; past that, the quoting is off
_TAIL = 1 << 16  # bytes of a block's end read first for its last quote (:func:`_ends_in_quote`)


def read_csv(
    source: Source, options: ReadOptions, block: int, watch: Watch | None
) -> tuple[Any, list[BadRow]]:
    """Parse the file (:func:`_whole_csv`); set aside the lines of quotes never closed.

    A quote that is never closed makes Arrow read the rest of the file into one value or
    one bad row (or, following quotes across blocks, refuse a row longer than a block).
    Only then is the file scanned for such quotes (:func:`diagnose.open_quotes`), so a
    clean file costs no extra pass. Under ``fail`` the first is refused; under ``skip``
    and ``quarantine`` their lines are set aside as bad rows and the file is parsed once
    more without them.
    """
    # Where the blocks cannot be checked afterwards (:func:`_blocks_whole`), they are cut
    # between rows from the start: slower, but a block cannot lose its end unnoticed.
    how = _Pass(block, watch, quoted_breaks=not _checkable(source, options))
    quotes: list[diagnose.OpenQuote] = []
    try:
        table, bad = _whole_csv(source, options, how)
    except ParseError as exc:
        swallowed = _breaks_lines(exc.bad) or "Empty CSV file" in str(exc)  # by the header?
        quotes = _open_quotes(source, options) if swallowed else []
        if not quotes:
            raise _csv_problem(source, options, exc) from None
    except _QuoteAcrossBlock as exc:
        quotes = _open_quotes(source, options)
        if not quotes:  # a quoted value longer than a block: read_source retries
            raise exc.straddling from None
    else:
        if _breaks_lines(bad) or diagnose.has_line_break(table):
            quotes = _open_quotes(source, options)
    if quotes:
        try:
            table, bad = _csv_table(
                source, options, replace(how, without=quotes, quoted_breaks=True)
            )
        except ParseError as exc:
            raise _csv_problem(source, options, exc) from None
    if bad:
        bad = diagnose.number_bad_rows(
            source, _delimiter(source, options), options.encoding, bad, without=quotes
        )
    diagnose.check_utf8(source, table, options)
    unclosed = [BadRow(q.line, q.text, "opens a quote that is never closed") for q in quotes]
    return table, sorted(bad + unclosed, key=lambda b: b.line or 0)


class _QuoteAcrossBlock(Exception):
    """Following quotes, a row did not end within a block: a quote never closed, surely."""

    def __init__(self, straddling: Exception) -> None:
        super().__init__(str(straddling))
        self.straddling = straddling


def _whole_csv(source: Source, options: ReadOptions, how: _Pass) -> tuple[Any, list[BadRow]]:
    """:func:`_csv_table`, with blocks cut between rows if a cut would fall inside a quote.

    Arrow's multi-threaded reader cuts the file into blocks at line breaks, blind to
    quotes. A cut inside a quoted value (a quote never closed, or a quoted line break)
    loses the rest of the block without a word (:func:`_blocks_whole` foresees it), or
    fails the parse: "out of sync", or a bad row (the value's second half). Then the file
    is parsed by a chunker that follows quotes, which costs ~30% more, hence only then;
    if that fails after a failed fast parse, the first failure stands. The check runs on a
    thread of its own beside the fast parse (0.07 s for the 860 MB benchmark file, more
    for a file whose blocks end without a quote in sight, which it reads whole).
    """
    from concurrent.futures import ThreadPoolExecutor

    import pyarrow as pa

    failed: ParseError | None = None
    with ThreadPoolExecutor(1, thread_name_prefix="mlk-blocks") as pool:
        whole = pool.submit(_blocks_whole, source, how, _delimiter(source, options))
        try:
            table, bad = _csv_table(source, options, how)
        except ParseError as exc:
            if not exc.bad and "out of sync with chunker" not in str(exc):
                raise
            failed = exc
        else:
            if whole.result():
                return table, bad
            del table, bad  # a block lost its end: parse again, following quotes
    try:
        return _csv_table(source, options, replace(how, quoted_breaks=True))
    except ParseError:
        if failed is None:
            raise
        raise failed from None
    except pa.ArrowInvalid as exc:
        if "straddl" not in str(exc):
            raise
        raise _QuoteAcrossBlock(exc) from None


@dataclass(frozen=True, slots=True)
class _Pass:
    """How one parse reads the file."""

    block: int
    watch: Watch | None = None
    without: Sequence[diagnose.OpenQuote] = ()  # lines not to read
    quoted_breaks: bool = False  # cut blocks only where no quote is open (~30% slower)


def _csv_table(source: Source, options: ReadOptions, how: _Pass) -> tuple[Any, list[BadRow]]:
    """Parse with the types Arrow infers from the first rows; infer throughout if need be.

    Arrow's reader, left to infer, keeps checking every block for a wider type (an int64
    column that turns out to hold "1.5" becomes double) and pays ~50% more for it. Most
    files keep their types, so we infer on the first rows alone (the first
    :data:`readers.HEAD_BYTES` of the block Arrow infers from) and parse the file with
    those types. If a later
    value does not fit (the parse fails), or a category column outgrows ``max_categories``
    in some block (where inference would have turned it into text), we parse again letting
    Arrow infer. A parse that succeeds therefore gives what inference gives, at the cost
    of one; tests/data/test_types.py compares the two.
    """
    types = _first_rows_types(source, options, how)
    if types:
        try:
            table, bad = _parse_csv(source, options, {**types, **options.column_types}, how)
        except ParseError:
            pass  # a value later on needs another type (or the file is bad): infer
        else:
            if _categories_fit(table, types, options.max_categories):
                return _exact_integers(source, options, how, table), bad
    table, bad = _parse_csv(source, options, options.column_types, how)
    return _exact_integers(source, options, how, table), bad


def _exact_integers(source: Source, options: ReadOptions, how: _Pass, table: Any) -> Any:
    """``table`` with the float columns that hold only integers, one of them too large for
    a double to keep exactly, read again as text and made exact integers
    (:func:`infer.exact_integers`). A file without a value at or beyond 2**53 in a
    float column is not read again."""
    import pyarrow as pa

    suspects = infer.inexact_floats(table, options.column_types)
    if not suspects:
        return table
    as_text = {**options.column_types, **{name: pa.string() for name in suspects}}
    text, _bad = _parse_csv(source, options, as_text, how)
    for name in suspects:
        exact = infer.exact_integers(source.path, name, text.column(name))
        if exact is not None:
            index = table.column_names.index(name)
            table = table.set_column(index, pa.field(name, exact.type), exact)
    return table


def _blocks_whole(source: Source, how: _Pass, separator: str) -> bool:
    """False if Arrow's fast parse may drop the end of a block: one ends inside a quote.

    Arrow's multi-threaded reader reads the file in chunks of the block size, cuts each at
    its last line break (``\\n`` or a lone ``\\r``), carries the bytes past the cut into
    the next block, and parses the blocks apart; a block whose parse ends inside a quote
    (one never closed, or a quoted line break across the cut) loses the rest of its rows
    without a word. Whether one does is read off the bytes, beside the parse
    (:func:`_ends_in_quote`), most often from a chunk's last line alone: for the 860 MB
    benchmark file, 40 MB are read instead of the whole file. A chunk whose last 64 KiB
    hold no quote is read whole (one ``memchr``). A file whose offsets are not Arrow's
    (one decompressed, decoded, or read without some lines) cannot be checked, so
    :func:`read_csv` has it cut between rows from the start.
    """
    if how.quoted_breaks:  # cut between rows: nothing can be lost
        return True
    delimiter = ord(separator)
    carry = b""  # the start of the next block: the last chunk's bytes past its cut
    with source.path.open("rb", buffering=0) as handle:
        size = os.fstat(handle.fileno()).st_size
        for start in range(0, size, how.block):
            chunk = _Chunk(handle.fileno(), start, min(how.block, size - start))
            if chunk.size < how.block:  # the last chunk: the last block runs to the end
                cut = chunk.size
            else:
                found = chunk.last_break()
                if found is None:  # a line longer than a block: the cuts are not known
                    return False
                cut = found + 1
            # Arrow completes the carried row with the bytes up to the chunk's first line
            # break, also blind to quotes: that end too must be outside a quote.
            ends = [chunk.first_break() + 1, cut] if carry else [cut]
            bom = start == 0
            if any(_ends_in_quote(carry, chunk, end, delimiter, bom=bom) for end in ends):
                return False
            carry = chunk.read(cut, chunk.size)
            if len(carry) != chunk.size - cut:  # the file shrank: parse it the safe way
                return False
    return not (carry.find(b'"') >= 0 and _tail_in_quote(carry, 0, delimiter, bom=False))


class _Chunk:
    """``size`` bytes of a file from ``start``, read in the parts asked for."""

    def __init__(self, fd: int, start: int, size: int) -> None:
        self.fd, self.start, self.size = fd, start, size
        self._whole: bytes | None = None

    def read(self, begin: int, end: int) -> bytes:
        if self._whole is not None:
            return self._whole[begin:end]
        return os.pread(self.fd, max(end - begin, 0), self.start + begin)

    def whole(self) -> bytes:
        if self._whole is None:
            self._whole = os.pread(self.fd, self.size, self.start)
        return self._whole

    def last_break(self) -> int | None:
        """Where the last line break is (``\\n`` or ``\\r``); None if there is none.
        The chunk's end is read first, the whole chunk only if that has none."""
        begin = max(self.size - _TAIL, 0)
        found = _last_break(self.read(begin, self.size))
        if found < 0 and begin:
            begin, found = 0, _last_break(self.whole())
        return begin + found if found >= 0 else None

    def first_break(self) -> int:
        """Where the first line break is; the last byte if there is none."""
        found = _first_break(self.read(0, _TAIL))
        if found < 0 and self.size > _TAIL:
            found = _first_break(self.whole())
        return found if found >= 0 else self.size - 1


def _last_break(data: bytes) -> int:
    return max(data.rfind(b"\n"), data.rfind(b"\r"))


def _first_break(data: bytes) -> int:
    found = [i for i in (data.find(b"\n"), data.find(b"\r")) if i >= 0]
    return min(found, default=-1)


def _ends_in_quote(carry: bytes, chunk: _Chunk, end: int, delimiter: int, *, bom: bool) -> bool:
    """Whether Arrow's parse of the block ``carry + chunk[:end]`` (whole lines) ends
    inside a quoted value.

    Arrow's parser opens a quote only at a field's start (after a delimiter or a line
    break); inside a quoted value ``""`` is a quote and a lone ``"`` closes the value,
    after which quotes are text, as they are in a field that does not start with one. So
    each run of quotes matters by its length alone: an even run changes nothing; an odd
    run at a field's start (or inside a quoted value) toggles "inside"; an odd run
    elsewhere closes a quoted value if one is open, and is text otherwise. The block ends
    inside a quote iff an odd number of odd runs at field starts follow the last odd run
    elsewhere, which is most often in the block's last line: growing windows of the end
    are read first, and the block whole only if they hold no odd run elsewhere.
    """
    window = _TAIL
    while window < end:
        tail = chunk.read(end - window - 1, end)
        if tail.find(b'"') < 0:
            break  # no quote near the end: it says nothing of a quote opened before
        verdict = _tail_in_quote(tail, 1, delimiter, bom=False)
        if verdict is not None:
            return verdict
        window *= 16
    data = chunk.read(0, end)
    if carry.find(b'"') < 0 and data.find(b'"') < 0:
        return False
    return bool(_tail_in_quote(carry + data, 0, delimiter, bom=bom))


def _tail_in_quote(block: bytes, begin: int, delimiter: int, *, bom: bool) -> bool | None:
    """:func:`_ends_in_quote` for ``block[begin:]`` (``block[begin - 1]`` the byte before
    it); None if ``begin`` > 0 and no odd run but at field starts is found."""
    import numpy as np

    data = np.frombuffer(block, np.uint8)
    quotes = np.flatnonzero(data[begin:] == ord('"')) + begin
    if begin and quotes.size and quotes[0] == begin and data[begin - 1] == ord('"'):
        return None  # the first run may start before the window
    if not quotes.size:
        return None if begin else False
    new_run = np.ones(quotes.size, dtype=bool)
    new_run[1:] = quotes[1:] != quotes[:-1] + 1
    firsts = np.flatnonzero(new_run)
    lengths = np.diff(np.append(firsts, quotes.size))
    starts = quotes[firsts][lengths % 2 == 1]  # where the odd runs start
    before = data[np.maximum(starts - 1, 0)]
    if bom and block.startswith(b"\xef\xbb\xbf"):  # Arrow skips a BOM
        begin = 3
    at_field_start = (
        ((starts == begin) & (begin != 1))
        | (before == delimiter)
        | (before == ord("\n"))
        | (before == ord("\r"))
    )
    elsewhere = np.flatnonzero(~at_field_start)
    if not elsewhere.size and begin == 1:
        return None
    after = elsewhere[-1] + 1 if elsewhere.size else 0
    return bool(np.count_nonzero(at_field_start[after:]) % 2)


def _checkable(source: Source, options: ReadOptions) -> bool:
    """Whether Arrow's block offsets are the file's: not for a decompressed or re-encoded
    file, whose blocks :func:`_blocks_whole` cannot find."""
    return source.compression is None and diagnose.codec(options.encoding) == "utf-8"


def _breaks_lines(bad: list[BadRow]) -> bool:
    return any("\n" in b.text for b in bad)


def _open_quotes(source: Source, options: ReadOptions) -> list[diagnose.OpenQuote]:
    """The lines to set aside for quotes never closed; refuse them under ``fail``."""
    found = diagnose.open_quotes(source, _delimiter(source, options), options.encoding)
    fail = options.on_bad_rows == "fail"
    quotes = list(itertools.islice(found, 1 if fail else MAX_OPEN_QUOTES + 1))
    if not quotes:
        return []
    first = quotes[0].line
    if fail or first == 1:
        fix = (
            " in the header"
            if first == 1
            else ", or pass --on-bad-rows skip (or quarantine) to set such lines aside"
        )
        raise UsageError(
            f"{source.path}: the quote opened on line {first} is never closed; close it or "
            f'remove the stray "{fix}'
        )
    if len(quotes) > MAX_OPEN_QUOTES:
        raise UsageError(
            f"{source.path}: more than {MAX_OPEN_QUOTES} lines open a quote that is never "
            f"closed (the first is line {first}); fix the file's quoting"
        )
    return quotes


def _delimiter(source: Source, options: ReadOptions) -> str:
    """The field separator: the one given (or detected at ingest), else the format's."""
    if options.delimiter is not None:
        return options.delimiter
    return "\t" if source.format == "tsv" else ","


def _csv_options(
    source: Source,
    options: ReadOptions,
    how: _Pass,
    types: dict[str, Any],
    bad: list[BadRow],
    *,
    threads: bool = True,
) -> tuple[Any, Any, Any]:
    import pyarrow.csv as pacsv

    fail = options.on_bad_rows == "fail"

    def on_invalid(row: Any) -> str:
        bad.append(BadRow(row.number, row.text, diagnose.field_problem(row)))
        return "error" if fail else "skip"

    read_opts = pacsv.ReadOptions(
        block_size=how.block, use_threads=threads, encoding=options.encoding
    )
    parse_opts = pacsv.ParseOptions(
        delimiter=_delimiter(source, options),
        invalid_row_handler=on_invalid,
        newlines_in_values=how.quoted_breaks,
    )
    convert_opts = pacsv.ConvertOptions(
        column_types=types,
        decimal_point=options.decimal,
        null_values=list(options.null_values),
        strings_can_be_null=True,  # the same null tokens in every column
        quoted_strings_can_be_null=True,  # "" and "NA" quoted too, as pandas reads them
        auto_dict_encode=True,
        auto_dict_max_cardinality=options.max_categories,
    )
    return read_opts, parse_opts, convert_opts


def _parse_csv(
    source: Source, options: ReadOptions, types: dict[str, Any], how: _Pass
) -> tuple[Any, list[BadRow]]:
    """One multi-threaded parse of the whole file.

    Raises :class:`ParseError`, or ``pyarrow.ArrowInvalid`` for a row longer than the block.
    """
    import pyarrow as pa
    import pyarrow.csv as pacsv

    bad: list[BadRow] = []
    read_opts, parse_opts, convert_opts = _csv_options(source, options, how, types, bad)
    try:
        with open_input(source, how.watch, how.without) as stream:
            table = pacsv.read_csv(
                stream,
                read_options=read_opts,
                parse_options=parse_opts,
                convert_options=convert_opts,
                memory_pool=memory_pool(),
            )
    except pa.ArrowInvalid as exc:
        if "straddl" in str(exc):
            raise  # read_source retries with bigger blocks
        raise ParseError(str(exc), bad) from None
    return table, bad


def _first_rows_types(source: Source, options: ReadOptions, how: _Pass) -> dict[str, Any]:
    """The types Arrow infers from the file's first rows (columns it cannot tell left out).

    The rows are the start of Arrow's first block, so a type that fits every value of the
    file is the type Arrow's inference settles on. Empty when they do not parse.
    """
    import io

    import pyarrow as pa
    import pyarrow.csv as pacsv

    size = min(how.block, readers.HEAD_BYTES)
    with open_input(source, without=how.without) as stream:
        head = stream.read(size)
    if len(head) == size:  # it ends mid-row: keep whole lines
        head = head[: head.rfind(b"\n") + 1]
    bad: list[BadRow] = []
    read_opts, parse_opts, convert_opts = _csv_options(
        source, options, how, options.column_types, bad, threads=False
    )
    try:
        sample = pacsv.read_csv(
            io.BytesIO(head),
            read_options=read_opts,
            parse_options=parse_opts,
            convert_options=convert_opts,
        )
        if sample.num_rows == 0 or bad:
            return {}
        # A header that is not UTF-8 fails here, on reading the names: the full parse says why.
        return {f.name: f.type for f in sample.schema if not pa.types.is_null(f.type)}
    except (pa.ArrowInvalid, UnicodeError):
        return {}


def _categories_fit(table: Any, types: dict[str, Any], limit: int) -> bool:
    """True unless an inferred category column has a block with over ``limit`` values."""
    import pyarrow as pa

    return not any(
        len(chunk.dictionary) > limit
        for name, dtype in types.items()
        if pa.types.is_dictionary(dtype) and name in table.column_names
        for chunk in table.column(name).chunks
    )


def _csv_problem(source: Source, options: ReadOptions, exc: ParseError) -> UsageError:
    text = str(exc)
    if "Empty CSV file" in text:
        return UsageError(f"{source.path} has no header line; nothing to ingest")
    if exc.bad and options.on_bad_rows == "fail":
        line = diagnose.csv_bad_row_line(source, _delimiter(source, options), options.encoding)
        where = f"line {line}" if line else "a row"
        return UsageError(
            f"{source.path}: {where} {exc.bad[0].problem}; fix it, or pass "
            "--on-bad-rows skip (or quarantine) to set such rows aside"
        )
    return UsageError(f"{source.path}: {first_line(text)}; fix the file")
