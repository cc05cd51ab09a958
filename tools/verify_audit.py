#!/usr/bin/env python3
"""Independently re-verify an orgctl audit chain.

Usage: python3 tools/verify_audit.py STATE.db

Reads the SQLite table orgctl_audit(seq, entry, prev_hash, hash) read-only, in seq order, and
checks every record exactly as docs/audit-chain.md specifies:

  1. seq is the next number (1, 2, 3, ... with no gap);
  2. prev_hash equals the previous record's hash (32 zero bytes for entry 1);
  3. hash == SHA-256(prev_hash || SHA-256(0x00 || entry));
  4. entry is a well-formed entry (UTF-8 JSON object with the documented fields and types)
     and byte-for-byte equal to its own RFC 8785 canonical form, re-computed here;
  5. the entry's "seq" field equals the row's seq.

Prints "ok: N entries, head <hex>" and exits 0, or "broken at entry N: <problem>" and exits 1.
Exit 2: usage error, unreadable database, or not an orgctl database.

Python 3 standard library only; shares no code with orgctl.
"""

import argparse
import hashlib
import json
import re
import sqlite3
import sys
import urllib.parse

GENESIS = bytes(32)
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1
MAX_DEPTH = 64
FIELDS = {"action", "actor", "address", "after", "before", "planId", "reason", "seq", "source", "time", "v"}
REQUIRED = FIELDS - {"reason"}
TIME_PATTERN = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z\Z")


class Malformed(Exception):
    """The entry bytes are not a well-formed canonical entry."""


# ---------------------------------------------------------------- RFC 8785 (integers only)

_ESCAPES = {'"': '\\"', "\\": "\\\\", "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r"}


def _jcs_string(text):
    out = ['"']
    for ch in text:
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif ord(ch) < 0x20:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)  # literal, including U+007F, U+2028, U+2029 and all non-ASCII
    out.append('"')
    return "".join(out)


def _utf16_key(text):
    # RFC 8785 sorts member names by their UTF-16 code units, not by code points:
    # U+FB33 (one unit) sorts after U+1F600 (surrogates D83D DE00) in UTF-16 order.
    return text.encode("utf-16-be")


def jcs(value, depth=0):
    """RFC 8785 canonical text for a value parsed by json.loads (no floats allowed)."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise Malformed("integer does not fit in 64 bits")
        return str(value)
    if isinstance(value, str):
        return _jcs_string(value)
    if depth >= MAX_DEPTH:
        raise Malformed("arrays and objects nested deeper than %d levels" % MAX_DEPTH)
    if isinstance(value, list):
        return "[" + ",".join(jcs(item, depth + 1) for item in value) + "]"
    if isinstance(value, dict):
        members = sorted(value.items(), key=lambda item: _utf16_key(item[0]))
        return "{" + ",".join(_jcs_string(k) + ":" + jcs(v, depth + 1) for k, v in members) + "}"
    raise Malformed("unsupported JSON value %r" % type(value).__name__)


def _no_duplicates(pairs):
    result = {}
    for key, value in pairs:
        if key in result:
            raise Malformed("duplicate key '%s' in object" % key)
        result[key] = value
    return result


def _reject_float(text):
    raise Malformed("number is not an integer (fractions and exponents are not used)")


def _reject_constant(text):
    raise Malformed("%s is not JSON" % text)


def parse_entry(raw):
    """Parses and validates entry bytes; returns the entry's seq field."""
    if not isinstance(raw, bytes):
        raise Malformed("entry is not a BLOB")
    try:
        text = raw.decode("utf-8")  # strict: rejects invalid UTF-8 and encoded surrogates
    except UnicodeDecodeError:
        raise Malformed("entry is not valid JSON: not valid UTF-8") from None
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_float=_reject_float,
            parse_constant=_reject_constant,
        )
    except Malformed as error:
        raise Malformed("entry is not valid JSON: %s" % error) from None
    except (ValueError, RecursionError) as error:
        raise Malformed("entry is not valid JSON: %s" % error) from None
    if not isinstance(value, dict):
        raise Malformed("entry is not a JSON object")
    for key in sorted(value, key=_utf16_key):
        if key not in FIELDS:
            raise Malformed("unknown field '%s'" % key)
    for key in sorted(REQUIRED):
        if key not in value:
            raise Malformed("missing field '%s'" % key)

    def integer(name):
        item = value[name]
        if isinstance(item, bool) or not isinstance(item, int):
            raise Malformed("field '%s' must be an integer" % name)
        return item

    def string(name):
        if not isinstance(value[name], str):
            raise Malformed("field '%s' must be a string" % name)
        return value[name]

    if integer("v") != 1:
        raise Malformed("field 'v' must be 1")
    seq = integer("seq")
    if seq < 1:
        raise Malformed("field 'seq' must be at least 1")
    if not valid_time(string("time")):
        raise Malformed("field 'time' must be RFC 3339 UTC with second precision (YYYY-MM-DDTHH:MM:SSZ)")
    for name in ("reason", "actor", "source", "planId", "action", "address"):
        if name in value:
            string(name)
    try:
        canonical = jcs(value).encode("utf-8")  # fails on lone surrogates from \ud800 escapes
    except Malformed as error:
        raise Malformed("entry is not valid JSON: %s" % error) from None
    except UnicodeEncodeError:
        raise Malformed("entry is not valid JSON: \\u escape encodes a lone surrogate") from None
    except RecursionError:
        raise Malformed("entry is not valid JSON: nested too deeply") from None
    if canonical != raw:
        raise Malformed("entry is not in canonical form (RFC 8785)")
    return seq


def valid_time(text):
    if not TIME_PATTERN.match(text):
        return False
    year, month, day = int(text[0:4]), int(text[5:7]), int(text[8:10])
    hour, minute, second = int(text[11:13]), int(text[14:16]), int(text[17:19])
    if year < 1 or not 1 <= month <= 12 or hour > 23 or minute > 59 or second > 59:
        return False
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = [31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31][month - 1]
    return 1 <= day <= days


# ---------------------------------------------------------------- the chain


def leaf_hash(entry):
    return hashlib.sha256(b"\x00" + entry).digest()


def chain_hash(previous, leaf):
    return hashlib.sha256(previous + leaf).digest()


def check(record, count, head):
    """Returns the problem with one record, or None. Order matches the Swift ChainVerifier."""
    seq, entry, prev_hash, stored_hash = record
    if seq != count + 1:
        return "sequence gap: expected entry %d" % (count + 1)
    if prev_hash != head:
        return "previous hash does not match the hash of the preceding entry"
    if not isinstance(entry, bytes) or stored_hash != chain_hash(head, leaf_hash(entry)):
        return "hash does not match the entry"
    try:
        entry_seq = parse_entry(entry)
    except Malformed as error:
        return "malformed entry: %s" % error
    if entry_seq != seq:
        return "seq field of the entry does not match its position"
    return None


def main(argv):
    parser = argparse.ArgumentParser(description="Re-verify the audit chain of an orgctl state database.")
    parser.add_argument("database", metavar="STATE.db", help="path to the SQLite state database")
    args = parser.parse_args(argv)  # exits 2 on a usage error

    uri = "file:%s?mode=ro" % urllib.parse.quote(args.database)
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        print("error: cannot open %s: %s" % (args.database, error), file=sys.stderr)
        return 2
    count, head = 0, GENESIS
    try:
        cursor = connection.execute("SELECT seq, entry, prev_hash, hash FROM orgctl_audit ORDER BY seq")
        for record in cursor:  # streamed: one row in memory at a time
            problem = check(record, count, head)
            if problem is not None:
                print("broken at entry %s: %s" % (record[0], problem))
                return 1
            count, head = count + 1, record[3]
    except sqlite3.Error as error:
        print("error: cannot read the audit table of %s: %s" % (args.database, error), file=sys.stderr)
        return 2
    finally:
        connection.close()
    print("ok: %d entries, head %s" % (count, head.hex()))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
