"""The text of a PDF that fpdf2 wrote, read back without a PDF library (the test suite has none).

Enough of PDF for our own invoices: objects and their (zlib) streams, the fonts each page
names and their ToUnicode maps, and the strings shown with ``Tj`` in the page contents, one
line of output per ``Tj``. Not a general PDF reader.
"""

from __future__ import annotations

import re
import zlib

_OBJECT = re.compile(rb"(\d+) 0 obj(.*?)endobj", re.S)
_STREAM = re.compile(rb"stream\r?\n(.*?)\r?\nendstream", re.S)
_REFERENCE = re.compile(rb"/(\w+) (\d+) 0 R")
_SHOW = re.compile(rb"/(\w+) [\d.]+ Tf|\(((?:\\.|[^\\)])*)\) ?Tj", re.S)
_ESCAPES = {b"n": b"\n", b"r": b"\r", b"t": b"\t", b"b": b"\b", b"f": b"\f"}


def _objects(document: bytes) -> dict[int, tuple[bytes, bytes]]:
    found = {}
    for match in _OBJECT.finditer(document):
        body = match.group(2)
        stream = _STREAM.search(body)
        data = b""
        if stream is not None:
            data = stream.group(1)
            if b"/FlateDecode" in body[: stream.start()]:
                data = zlib.decompress(data)
        found[int(match.group(1))] = (body, data)
    return found


def _unescape(literal: bytes) -> bytes:
    out, i = bytearray(), 0
    while i < len(literal):
        char = literal[i : i + 1]
        if char != b"\\":
            out += char
            i += 1
            continue
        following = literal[i + 1 : i + 2]
        octal = re.match(rb"[0-7]{1,3}", literal[i + 1 : i + 4])
        if octal:
            out.append(int(octal.group(0), 8))
            i += 1 + len(octal.group(0))
        else:
            out += _ESCAPES.get(following, following)
            i += 2
    return bytes(out)


def _to_unicode(cmap: bytes) -> dict[int, str]:
    mapping = {}
    for code, text in re.findall(rb"<([0-9A-Fa-f]{4})> <([0-9A-Fa-f]+)>", cmap):
        mapping[int(code, 16)] = bytes.fromhex(text.decode()).decode("utf-16-be")
    return mapping


def pdf_text(document: bytes) -> str:
    objects = _objects(document)
    maps: dict[bytes, dict[int, str]] = {}
    for body, _ in objects.values():
        if b"/Font" in body and b"/Type /Page" not in body:
            for name, number in _REFERENCE.findall(body):
                font = objects.get(int(number), (b"", b""))[0]
                unicode_ref = re.search(rb"/ToUnicode (\d+) 0 R", font)
                if unicode_ref:
                    maps[name] = _to_unicode(objects[int(unicode_ref.group(1))][1])
    lines = []
    for body, data in objects.values():
        if b"/Length" not in body or b"Tj" not in data:
            continue
        font: dict[int, str] = {}
        for match in _SHOW.finditer(data):
            if match.group(1) is not None:
                font = maps.get(match.group(1), {})
                continue
            raw = _unescape(match.group(2))
            codes = [int.from_bytes(raw[i : i + 2], "big") for i in range(0, len(raw), 2)]
            lines.append("".join(font.get(code, "\ufffd") for code in codes))
    return "\n".join(lines)
