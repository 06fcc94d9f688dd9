"""Charset labels a browser accepts (the WHATWG Encoding Standard's label table) -> Python codecs.

Only these labels are honoured: anything else found in a header or ``<meta>`` is ignored, as
browsers ignore it, and the page counts as undeclared. Python's codec registry is never consulted
for a label: it knows transforms and non-web codecs (``punycode``, ``idna``, ``zlib``, ``hex``,
``base64``, ``rot_13``, ``utf-7``, ``unicode_escape``, ``undefined``...) that either raise on any
input or decode bytes no browser would.

Two WHATWG encodings have no Python codec: ``replacement`` (the labels of ISO-2022-KR/CN and
HZ-GB-2312, which browsers refuse to decode: the whole document is one U+FFFD) and
``x-user-defined`` (bytes 0x80-0xFF to U+F780-U+F7FF). :func:`decode_bytes` implements both.

Mappings that differ from the standard's names, as browsers decode them: Shift_JIS labels as
Windows-31J (``cp932``: the NEC/IBM extensions real pages use), the Latin-1/ASCII labels as
``cp1252``, GBK labels as ``gb18030`` (a superset), Big5 as ``big5hkscs``, EUC-KR as ``cp949``,
ISO-2022-JP as ``iso2022_jp_ext`` (it also takes the half-width katakana escape), and the UTF-16
labels as UTF-8 (the HTML standard's rule for a declared UTF-16 that has no byte order mark).
"""

from __future__ import annotations

import codecs

REPLACEMENT = "replacement"
X_USER_DEFINED = "x-user-defined"

# Python codec -> the WHATWG labels that select it (https://encoding.spec.whatwg.org/#names-and-labels).
_TABLE: dict[str, tuple[str, ...]] = {
    "utf-8": ("unicode-1-1-utf-8", "unicode11utf8", "unicode20utf8", "utf-8", "utf8", "x-unicode20utf8",
              # UTF-16BE / UTF-16LE labels: declared without a BOM, the HTML standard reads them as UTF-8
              "unicodefffe", "utf-16be", "csunicode", "iso-10646-ucs-2", "ucs-2", "unicode", "unicodefeff",
              "utf-16", "utf-16le"),
    "cp866": ("866", "cp866", "csibm866", "ibm866"),
    "iso8859-2": ("csisolatin2", "iso-8859-2", "iso-ir-101", "iso8859-2", "iso88592", "iso_8859-2",
                  "iso_8859-2:1987", "l2", "latin2"),
    "iso8859-3": ("csisolatin3", "iso-8859-3", "iso-ir-109", "iso8859-3", "iso88593", "iso_8859-3",
                  "iso_8859-3:1988", "l3", "latin3"),
    "iso8859-4": ("csisolatin4", "iso-8859-4", "iso-ir-110", "iso8859-4", "iso88594", "iso_8859-4",
                  "iso_8859-4:1988", "l4", "latin4"),
    "iso8859-5": ("csisolatincyrillic", "cyrillic", "iso-8859-5", "iso-ir-144", "iso8859-5", "iso88595",
                  "iso_8859-5", "iso_8859-5:1988"),
    "iso8859-6": ("arabic", "asmo-708", "csiso88596e", "csiso88596i", "csisolatinarabic", "ecma-114",
                  "iso-8859-6", "iso-8859-6-e", "iso-8859-6-i", "iso-ir-127", "iso8859-6", "iso88596",
                  "iso_8859-6", "iso_8859-6:1987"),
    "iso8859-7": ("csisolatingreek", "ecma-118", "elot_928", "greek", "greek8", "iso-8859-7", "iso-ir-126",
                  "iso8859-7", "iso88597", "iso_8859-7", "iso_8859-7:1987", "sun_eu_greek"),
    "iso8859-8": ("csiso88598e", "csisolatinhebrew", "hebrew", "iso-8859-8", "iso-8859-8-e", "iso-ir-138",
                  "iso8859-8", "iso88598", "iso_8859-8", "iso_8859-8:1988", "visual",
                  "csiso88598i", "iso-8859-8-i", "logical"),  # ISO-8859-8-I: same bytes, logical order
    "iso8859-10": ("csisolatin6", "iso-8859-10", "iso-ir-157", "iso8859-10", "iso885910", "l6", "latin6"),
    "iso8859-13": ("iso-8859-13", "iso8859-13", "iso885913"),
    "iso8859-14": ("iso-8859-14", "iso8859-14", "iso885914"),
    "iso8859-15": ("csisolatin9", "iso-8859-15", "iso8859-15", "iso885915", "iso_8859-15", "l9"),
    "iso8859-16": ("iso-8859-16",),
    "koi8-r": ("cskoi8r", "koi", "koi8", "koi8-r", "koi8_r"),
    "koi8-u": ("koi8-ru", "koi8-u"),
    "mac-roman": ("csmacintosh", "mac", "macintosh", "x-mac-roman"),
    "cp874": ("dos-874", "iso-8859-11", "iso8859-11", "iso885911", "tis-620", "windows-874"),
    "cp1250": ("cp1250", "windows-1250", "x-cp1250"),
    "cp1251": ("cp1251", "windows-1251", "x-cp1251"),
    "cp1252": ("ansi_x3.4-1968", "ascii", "cp1252", "cp819", "csisolatin1", "ibm819", "iso-8859-1", "iso-ir-100",
               "iso8859-1", "iso88591", "iso_8859-1", "iso_8859-1:1987", "l1", "latin1", "us-ascii",
               "windows-1252", "x-cp1252"),
    "cp1253": ("cp1253", "windows-1253", "x-cp1253"),
    "cp1254": ("cp1254", "csisolatin5", "iso-8859-9", "iso-ir-148", "iso8859-9", "iso88599", "iso_8859-9",
               "iso_8859-9:1989", "l5", "latin5", "windows-1254", "x-cp1254"),
    "cp1255": ("cp1255", "windows-1255", "x-cp1255"),
    "cp1256": ("cp1256", "windows-1256", "x-cp1256"),
    "cp1257": ("cp1257", "windows-1257", "x-cp1257"),
    "cp1258": ("cp1258", "windows-1258", "x-cp1258"),
    "mac-cyrillic": ("x-mac-cyrillic", "x-mac-ukrainian"),
    "gb18030": ("chinese", "csgb2312", "csiso58gb231280", "gb2312", "gb_2312", "gb_2312-80", "gbk", "iso-ir-58",
                "x-gbk", "gb18030"),
    "big5hkscs": ("big5", "big5-hkscs", "cn-big5", "csbig5", "x-x-big5"),
    "euc_jp": ("cseucpkdfmtjapanese", "euc-jp", "x-euc-jp"),
    "iso2022_jp_ext": ("csiso2022jp", "iso-2022-jp"),
    "cp932": ("csshiftjis", "ms932", "ms_kanji", "shift-jis", "shift_jis", "sjis", "windows-31j", "x-sjis"),
    "cp949": ("cseuckr", "csksc56011987", "euc-kr", "iso-ir-149", "korean", "ks_c_5601-1987", "ks_c_5601-1989",
              "ksc5601", "ksc_5601", "windows-949"),
    REPLACEMENT: ("csiso2022kr", "hz-gb-2312", "iso-2022-cn", "iso-2022-cn-ext", "iso-2022-kr", "replacement"),
    X_USER_DEFINED: ("x-user-defined",),
}

LABELS: dict[str, str] = {label: codec for codec, labels in _TABLE.items() for label in labels}
WEB_CODECS = frozenset(_TABLE)
_ASCII_WHITESPACE = "\t\n\f\r "
_X_USER_DEFINED_TABLE = "".join(chr(b) if b < 0x80 else chr(0xF780 + b - 0x80) for b in range(256))


def codec_for_label(label: str | None) -> str | None:
    """The Python codec a browser would decode a charset label with, or None for an unknown label."""
    if not label:
        return None
    return LABELS.get(label.strip(_ASCII_WHITESPACE).strip("\"'").lower())


def web_codec(python_name: str | None) -> str | None:
    """A Python codec name (as a detector reports it) if it decodes a web encoding, else None."""
    if not python_name:
        return None
    try:
        name = codecs.lookup(python_name).name
    except LookupError:
        return None
    if name in ("ascii", "latin-1", "iso8859-1"):
        return "cp1252"
    if name in ("shift_jis", "shift_jis_2004", "shift_jisx0213"):
        return "cp932"
    if name in ("big5", "cp950"):
        return "big5hkscs"
    if name in ("gb2312", "gbk"):
        return "gb18030"
    if name == "euc_kr":
        return "cp949"
    if name in ("iso2022_jp", "iso2022_jp_1", "iso2022_jp_2"):
        return "iso2022_jp_ext"
    return name if name in WEB_CODECS and name not in (REPLACEMENT, X_USER_DEFINED) else None


def decode_bytes(data: bytes, codec: str, errors: str = "strict") -> str:
    """``data.decode(codec, errors)`` that also knows the two WHATWG encodings Python lacks."""
    if codec == REPLACEMENT:
        return "\ufffd" if data else ""
    if codec == X_USER_DEFINED:
        return codecs.charmap_decode(data, errors, _X_USER_DEFINED_TABLE)[0]
    return data.decode(codec, errors)
