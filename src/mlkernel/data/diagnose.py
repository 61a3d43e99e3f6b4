"""Naming the line: the slow scans that run only after the fast parse found a problem.

Arrow's multi-threaded CSV reader does not know physical line numbers, and its JSON
reader counts rows per block; these helpers read the file again, sequentially, to say
where the problem is.
"""

from __future__ import annotations

import codecs
import collections
import csv
import io
import itertools
import json
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mlkernel.errors import UsageError

if TYPE_CHECKING:
    from mlkernel.data.readers import BadRow, ReadOptions
    from mlkernel.data.sources import Source

CHUNK = 1 << 20


def raw_chunks(source: Source, offset: int = 0) -> Iterator[bytes]:
    """The decompressed bytes of ``source`` from byte ``offset`` on, in chunks."""

    with source.stream() as stream:
        if stream.seekable():
            stream.seek(offset)
        else:  # compressed: decompress up to the offset
            while offset > 0 and (skipped := len(stream.read(min(offset, CHUNK)))):
                offset -= skipped
        while True:
            chunk = stream.read(CHUNK)
            if not chunk:
                return
            yield chunk


def lines(source: Source, offset: int = 0) -> Iterator[bytes]:
    """The lines of ``source`` with their line ends, from byte ``offset`` (a line start) on."""
    rest = b""
    for chunk in raw_chunks(source, offset):
        parts = (rest + chunk).split(b"\n")
        rest = parts.pop()
        for part in parts:
            yield part + b"\n"
    if rest:
        yield rest


@dataclass(frozen=True, slots=True)
class OpenQuote:
    """A line that opens a quote that is never closed: its number, its bytes' span, its text."""

    line: int
    start: int
    end: int
    text: str


class Without(io.RawIOBase):
    """A decompressed stream read without some lines (sorted :class:`OpenQuote` spans).

    Arrow's readers take it as a file; they read it in blocks, so the Python in between
    costs little.
    """

    def __init__(self, stream: Any, spans: Sequence[OpenQuote]) -> None:
        super().__init__()
        self._stream = stream
        self._spans = list(spans)
        self._at = 0  # the position in ``stream``

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        """Close the stream under it too (its owner may hold only this wrapper)."""
        if not self.closed:
            self._stream.close()
        super().close()

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            if self._spans and self._spans[0].start <= self._at:
                self._skip(self._spans.pop(0).end - self._at)
                continue
            want = len(view) - filled
            if self._spans:
                want = min(want, self._spans[0].start - self._at)
            data = self._stream.read(want)
            if not data:
                break
            view[filled : filled + len(data)] = data
            filled += len(data)
            self._at += len(data)
        return filled

    def _skip(self, size: int) -> None:
        while size > 0 and (data := self._stream.read(min(size, CHUNK))):
            size -= len(data)
            self._at += len(data)


def _stream(source: Source, without: Sequence[OpenQuote] = ()) -> Any:
    """``source`` decompressed, as Arrow's readers take it, less the lines ``without``."""

    stream = source.stream()
    return Without(stream, without) if without else stream


def original_line(number: int, without: Sequence[OpenQuote]) -> int:
    """The file's line number of line ``number`` of the file read ``without`` some lines."""
    for quote in without:
        if quote.line > number:
            break
        number += 1
    return number


def _single_thread_rows(
    source: Source,
    delimiter: str,
    encoding: str,
    stop: bool,
    without: Sequence[OpenQuote] = (),
) -> list[tuple[int | None, str, str]]:
    """The rows with the wrong field count, in file order: Arrow's number for each (rows,
    not lines, counted in the file read ``without`` some lines), its text and its problem.
    Arrow's single-threaded reader numbers them; the parallel one cannot."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    found: list[tuple[int | None, str, str]] = []

    def on_invalid(row: Any) -> str:
        number = row.number if isinstance(row.number, int) and row.number > 0 else None
        found.append((number, row.text, field_problem(row)))
        return "error" if stop else "skip"

    stream = _stream(source, without)
    try:
        pacsv.read_csv(
            stream,
            read_options=pacsv.ReadOptions(
                use_threads=False, encoding=encoding, block_size=1 << 26
            ),
            parse_options=pacsv.ParseOptions(
                delimiter=delimiter, invalid_row_handler=on_invalid, newlines_in_values=True
            ),
        )
    except pa.ArrowInvalid:
        pass
    finally:
        stream.close()
    return found


def physical_lines(source: Source, encoding: str, texts: Sequence[str]) -> list[int | None]:
    """The line each of ``texts`` (rows as Arrow's reader gives them, in file order) starts
    on; None for one not found, and for those after it.

    Arrow numbers rows, not lines: a blank line, or a quoted value over several lines,
    before a bad row makes its number smaller than its line. So each row's text is looked
    for as whole lines, after the line of the one before it.
    """
    wanted = [_line_parts(text.encode(codec(encoding), "replace")) for text in texts]
    numbered = ((n, line.rstrip(b"\r\n")) for n, line in enumerate(lines(source), 1))
    next(numbered, None)  # the header, never a bad row
    back: collections.deque[tuple[int, bytes]] = collections.deque()
    found: list[int | None] = []
    for parts in wanted:
        hit = None
        while (item := back.popleft() if back else next(numbered, None)) is not None:
            if item[1] != parts[0]:
                continue
            ahead: list[tuple[int, bytes]] = []
            for part in parts[1:]:
                following = back.popleft() if back else next(numbered, None)
                if following is None:
                    break
                ahead.append(following)
                if following[1] != part:
                    break
            else:
                hit = item[0]
                break
            back.extendleft(reversed(ahead))
        if hit is None:
            break
        found.append(hit)
    return found + [None] * (len(wanted) - len(found))


def _line_parts(text: bytes) -> list[bytes]:
    return [part.rstrip(b"\r") for part in text.split(b"\n")]


def csv_bad_row_line(source: Source, delimiter: str, encoding: str) -> int | None:
    """The physical line number of the first row with the wrong field count."""
    rows = _single_thread_rows(source, delimiter, encoding, stop=True)
    if not rows:
        return None
    number, text, _problem = rows[0]
    return physical_lines(source, encoding, [text])[0] or number


def number_bad_rows(
    source: Source,
    delimiter: str,
    encoding: str,
    bad: list[BadRow],
    without: Sequence[OpenQuote] = (),
) -> list[BadRow]:
    """``bad`` in file order, numbered by the line each starts on.

    ``without``: the lines the parse that found ``bad`` did not read. Where a row's text
    cannot be found as whole lines (it should always be), Arrow's row number stands.
    """
    from mlkernel.data.readers import BadRow

    rows = _single_thread_rows(source, delimiter, encoding, stop=False, without=without)
    if len(rows) != len(bad):
        return bad
    found = physical_lines(source, encoding, [text for _n, text, _p in rows])
    return [
        BadRow(line if line is not None else original_line(number or 0, without) or None, *row)
        for (number, *row), line in zip(rows, found, strict=True)
    ]


def field_problem(row: Any) -> str:
    """What is wrong with a row Arrow's reader refused (its ``InvalidRow``)."""
    return f"has {row.actual_columns} fields where the header has {row.expected_columns}"


def has_line_break(table: Any) -> bool:
    """True if a column name or a text value of ``table`` holds a line break (a quote
    may be open)."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if any("\n" in name for name in table.column_names):
        return True
    for column in table.columns:
        for chunk in column.chunks:
            values = chunk.dictionary if pa.types.is_dictionary(chunk.type) else chunk
            if pa.types.is_string(values.type) and pc.any(pc.match_substring(values, "\n")).as_py():
                return True
    return False


FIELD_LIMIT = 64 << 20  # a quoted value longer than this is taken for a quote never closed


def open_quotes(source: Source, delimiter: str, encoding: str) -> Iterator[OpenQuote]:
    """The lines that open a quote that is never closed, in order.

    Such a quote makes a naive parser (Arrow's too) read the rest of the file into one
    value. Python's csv reader, strict, fails on the record: at the end of the file, at
    its field size limit (raised to :data:`FIELD_LIMIT`: a valid value may be megabytes), or at a later quote that "closes" it but is not followed by a
    delimiter. A record that failed past its first line is such a quote: its first line is
    set aside and reading goes on from the next line, as if it were not there; one that
    failed within its line (``"a"b``, which Arrow reads as ``ab``) is not, and reading goes
    on past it. The lines a failed record swallowed are read again from memory.
    """
    feed = _Lines(source, encoding)
    base = 1  # the line the reader starts at
    while True:
        reader = csv.reader(feed.lines_from(base), delimiter=delimiter, strict=True)
        start = base  # the first line of the record being read
        limit = csv.field_size_limit(FIELD_LIMIT)  # process-wide: restored before yielding
        try:
            for _row in reader:
                start = base + reader.line_num
            return
        except csv.Error as exc:
            # The end of the file inside a quote, even on the quote's own line (the last
            # line), or a record that ran past its first line: a quote never closed.
            at_end = "unexpected end of data" in str(exc)
            swallowed = at_end or base + reader.line_num - 1 > start
        finally:
            csv.field_size_limit(limit)
        if swallowed:
            yield feed.open_quote(start)
        base = start + 1


@dataclass(frozen=True, slots=True)
class _Chunk:
    first: int  # the number of its first line
    at: int  # its byte offset
    data: bytes  # whole lines
    text: list[str]  # those lines decoded, without their line breaks


class _Lines:
    """A file's lines as text for :func:`csv.reader`, decoded a chunk at a time.

    The reader takes them from C iterators (no Python call per line). The last few
    chunks are kept, so that reading can start again at a line lately read.
    """

    def __init__(self, source: Source, encoding: str) -> None:
        self._source = source
        self._encoding = encoding
        self._chunks = self._read()
        self._recent: collections.deque[_Chunk] = collections.deque(maxlen=4)
        self._next = 1  # the first line of the chunk not yet read

    def _read(self, offset: int = 0, first: int = 1) -> Iterator[list[str]]:
        decode = codecs.getincrementaldecoder(codec(self._encoding))(errors="replace").decode
        at, rest = offset, b""
        for chunk in raw_chunks(self._source, offset):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1
            whole, rest = data[:cut], data[cut:]
            if whole:
                yield self._keep(_Chunk(first, at, whole, decode(whole).split("\n")[:-1]))
                first, at = first + whole.count(b"\n"), at + len(whole)
        if rest:
            yield self._keep(_Chunk(first, at, rest, [decode(rest, final=True)]))

    def _keep(self, chunk: _Chunk) -> list[str]:
        self._recent.append(chunk)
        self._next = chunk.first + len(chunk.text)
        return chunk.text

    def lines_from(self, line: int) -> Iterator[str]:
        """The lines from ``line`` on: those kept, then those not yet read."""
        kept = [c for c in self._recent if c.first + len(c.text) > line]
        if line < self._next and (not kept or kept[0].first > line):
            self._chunks = self._read(*self._where(line))  # read too long ago: read again
            kept = []
        head = [c.text[max(line - c.first, 0) :] for c in kept]
        return itertools.chain(*head, itertools.chain.from_iterable(self._chunks))

    def open_quote(self, line: int) -> OpenQuote:
        at, raw = self._line(line)
        text = raw.decode(codec(self._encoding), "replace").rstrip("\r\n")
        return OpenQuote(line, at, at + len(raw), text)

    def _line(self, line: int) -> tuple[int, bytes]:
        """(the byte offset, the bytes) of ``line``, a line lately read."""
        for chunk in self._recent:
            if chunk.first <= line < chunk.first + len(chunk.text):
                start = 0
                for _ in range(line - chunk.first):
                    start = chunk.data.index(b"\n", start) + 1
                end = chunk.data.find(b"\n", start) + 1 or len(chunk.data)
                return chunk.at + start, chunk.data[start:end]
        at, _ = self._where(line)
        return at, next(lines(self._source, at))

    def _where(self, line: int) -> tuple[int, int]:
        """(the byte offset of ``line``, ``line``), counting lines from the file's start."""
        at = 0
        for number, raw in enumerate(lines(self._source), 1):
            if number == line:
                return at, line
            at += len(raw)
        raise LookupError(line)


def codec(encoding: str) -> str:
    """Python's name for an encoding Arrow takes."""
    return "utf-8" if encoding.replace("-", "").lower() == "utf8" else encoding


def check_utf8(source: Source, table: Any, options: ReadOptions) -> None:
    """Arrow reads a column with non-UTF-8 bytes as binary; refuse it, naming the line."""
    import pyarrow as pa

    binary = [
        f.name
        for f in table.schema
        if f.name not in options.column_types
        and pa.types.is_binary(f.type.value_type if pa.types.is_dictionary(f.type) else f.type)
    ]
    if not binary:
        return
    raise UsageError(
        f"{source.path}: {not_utf8(source)} (column {binary[0]!r}); pass --encoding with the "
        "file's encoding (e.g. latin-1), or re-encode it as UTF-8"
    )


def not_utf8(source: Source) -> str:
    """Where the file's first byte that is not UTF-8 is, in words."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    line = 1
    for chunk in raw_chunks(source):
        try:
            decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            line += chunk[: exc.start].count(b"\n")
            return f"line {line} holds byte {chunk[exc.start]:#04x}, which is not UTF-8"
        line += chunk.count(b"\n")
    return "not UTF-8"


def _json_kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


class _Kinds:
    """The first JSON type seen per field, and where; fields in ``free`` may change type."""

    def __init__(self, unit: str, free: Collection[str] = ()) -> None:
        self.unit = unit
        self.free = free
        self.first: dict[str, tuple[str, int]] = {}

    def check(self, record: Any, where: int) -> str | None:
        if not isinstance(record, dict):
            return f"{self.unit} {where} is not a JSON object"
        for key, value in record.items():
            kind = _json_kind(value)
            if kind is None or key in self.free:
                continue
            seen = self.first.setdefault(key, (kind, where))
            if seen[0] != kind:
                return (
                    f"field {key!r} is {seen[0]} on {self.unit} {seen[1]} but {kind} on "
                    f"{self.unit} {where}; make it one type in every record, or declare "
                    "its type with --schema"
                )
        return None


@dataclass(slots=True)
class JsonLines:
    """An NDJSON file's lines that are JSON objects, and the others."""

    good: bytes
    bad: list[BadRow]
    names: list[str]  # the fields, in the order they first appear


def split_ndjson(
    source: Source,
    *,
    keep_bad: bool,
    as_text: Collection[str] = frozenset(),
    null_values: Collection[str] = frozenset(),
) -> JsonLines:
    """The lines that are JSON objects; the others set aside, or refused unless ``keep_bad``.

    Values of the fields in ``as_text`` that are not strings are written as JSON text (1
    becomes "1", a number as the file writes it), so that Arrow reads those fields as text
    whatever their JSON type; a type change in any other field is refused, naming both
    lines. A string value in ``null_values`` is null (so "NA" in a number field is no
    type change). An object that gives a key twice is a bad line. For a JSON array
    (:func:`json_array_records`) a line is a record, and messages say so.
    """
    from mlkernel.data.readers import BadRow

    unit = "record" if source.format == "json" else "line"
    kinds = _Kinds(unit, as_text)
    nulls = frozenset(null_values)
    good: list[bytes] = []
    bad: list[BadRow] = []
    names: dict[str, None] = {}
    for number, read in enumerate(lines(source), 1):
        raw = read
        if not raw.strip():
            continue
        problem: str | None = None
        try:
            record = json.loads(raw, object_pairs_hook=_refuse_repeats)
        except RepeatedKey as exc:
            problem = str(exc)
        except RecursionError:
            raise  # read_source names it
        except ValueError as exc:
            problem = f"is not valid JSON ({exc})"
        else:
            if not isinstance(record, dict):
                problem = "is not a JSON object"
        if problem is not None:
            if not keep_bad:
                raise UsageError(
                    f"{source.path}: {unit} {number} {problem}; fix it, or pass --on-bad-rows "
                    f"skip (or quarantine) to set such {unit}s aside"
                )
            bad.append(BadRow(number, raw.decode("utf-8", "replace").rstrip("\r\n"), problem))
            continue
        missing = [k for k, v in record.items() if isinstance(v, str) and v in nulls]
        if missing:
            record.update(dict.fromkeys(missing))
            raw = json.dumps(record, ensure_ascii=False).encode() + b"\n"
        changed = kinds.check(record, number)
        if changed is not None:
            raise UsageError(f"{source.path}: {changed}")
        names.update(dict.fromkeys(record))
        if any(record.get(k) is not None and not isinstance(record[k], str) for k in as_text):
            good.append(_as_text(raw, record, as_text))
        else:
            good.append(raw if raw.endswith(b"\n") else raw + b"\n")
    return JsonLines(b"".join(good), bad, list(names))


def _as_text(raw: bytes, record: dict[str, Any], fields: Collection[str]) -> bytes:
    """``raw`` written again with the values of ``fields`` as JSON strings (null stays null)."""
    written = json.loads(raw, parse_int=str, parse_float=str, parse_constant=str)
    return json.dumps(_text_values(record, written, fields)).encode() + b"\n"


def _text_values(
    record: dict[str, Any], written: dict[str, Any], fields: Collection[str]
) -> dict[str, Any]:
    """``record`` with the values of ``fields`` as text: a number as ``written`` has it
    (1.50 stays "1.50"), true as "true", an array or object as its JSON."""
    out = dict(record)
    for key in fields:
        value = record.get(key)
        if value is None or isinstance(value, str):
            continue
        if isinstance(value, bool):
            out[key] = "true" if value else "false"
        elif isinstance(value, int | float):
            out[key] = written[key]
        else:
            out[key] = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return out


class RepeatedKey(ValueError):
    """A JSON object gives a key twice."""

    def __init__(self, key: str) -> None:
        super().__init__(f"has the key {key!r} twice in one object")
        self.key = key


class _Repeats(dict):  # type: ignore[type-arg]
    """An object that gives a key twice, its pairs kept (to be written out as they were)."""

    def __init__(self, pairs: list[tuple[str, Any]]) -> None:
        super().__init__(pairs)
        self.pairs = pairs


def _refuse_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    if len(record) != len(pairs):
        seen: set[str] = set()
        raise RepeatedKey(next(k for k, _ in pairs if k in seen or seen.add(k)))  # type: ignore[func-returns-value]
    return record


def _keep_repeats(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    record = dict(pairs)
    return record if len(record) == len(pairs) else _Repeats(pairs)


def _dump(value: Any) -> str:
    """``value`` as JSON, an object that gives a key twice written with both."""
    if isinstance(value, _Repeats):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.pairs) + "}"
    if isinstance(value, dict) and any(isinstance(v, dict | list) for v in value.values()):
        return "{" + ",".join(f"{json.dumps(k)}:{_dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list) and any(isinstance(v, dict | list) for v in value):
        return "[" + ",".join(_dump(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def json_array_records(source: Source, data: bytes) -> bytes:
    """The records of the JSON array ``data``, one per line (NDJSON); a one-line
    :class:`UsageError` if it is not valid JSON or not an array.

    An object that gives a key twice is written with both, so that the NDJSON reader
    refuses it (or sets it aside) as it does such a line; numbers are written as parsed
    (integers exactly; NaN as NaN).
    """
    seen_repeat = False

    def hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal seen_repeat
        record = _keep_repeats(pairs)
        seen_repeat = seen_repeat or isinstance(record, _Repeats)
        return record

    try:
        records = json.loads(data, object_pairs_hook=hook)
    except RecursionError:
        raise  # read_source names it
    except ValueError as exc:
        line = getattr(exc, "lineno", None)
        raise UsageError(
            f"{source.path}: line {line} is not valid JSON ({exc}); fix the file"
        ) from None
    if not isinstance(records, list):
        raise UsageError(
            f"{source.path} is not a JSON array of objects; give one object per record"
        )
    dump = _dump if seen_repeat else (lambda r: json.dumps(r, ensure_ascii=False))
    return "".join(dump(r) + "\n" for r in records).encode()
