#!/usr/bin/env python3
"""Independently re-verify an orgctl audit chain, its checkpoints and proofs.

Usage: python3 tools/verify_audit.py STATE.db [--checkpoint FILE]... [--key PUBKEY]
                                              [--proof FILE]... [--consistency FILE --old CHECKPOINT]
       python3 tools/verify_audit.py postgresql://... [--schema NAME] [the same options]
       python3 tools/verify_audit.py --self-test

Reads the SQLite table orgctl_audit(seq, entry, prev_hash, hash) read-only, in seq order, and
checks every record exactly as docs/audit-chain.md specifies (a PostgreSQL state, named by a
libpq URI, is first copied by `psql` -- orgctl_audit and orgctl_merkle of --schema, default
orgctl, in one REPEATABLE READ snapshot -- into a temporary SQLite file read the same way):

  1. seq is the next number (1, 2, 3, ... with no gap);
  2. prev_hash equals the previous record's hash (32 zero bytes for entry 1);
  3. hash == SHA-256(prev_hash || SHA-256(0x00 || entry));
  4. entry is a well-formed entry (UTF-8 JSON object with the documented fields and types)
     and byte-for-byte equal to its own RFC 8785 canonical form, re-computed here;
  5. the entry's "seq" field equals the row's seq.

Prints "ok: N entries, head <hex>" and exits 0, or "broken at entry N: <problem>" and exits 1.
Exit 2: usage error, unreadable database, or not an orgctl database.

It also computes the RFC 9162 Merkle tree over the entries (docs/audit-chain.md section 7) and,
when asked, checks C2SP checkpoints (c2sp.org/tlog-checkpoint, signed notes with Ed25519),
inclusion proofs (c2sp.org/tlog-proof@v1) and consistency proofs ("old N" + hashes + checkpoint,
the tlog-witness add-checkpoint body) against it. Any failed check exits 1.

Python 3 standard library only, except Ed25519 signatures, which need the `cryptography`
package (imported only with --key and --self-test). Shares no code with orgctl.
"""

import argparse
import base64
import hashlib
import json
import re
import sqlite3
import subprocess
import sys
import os
import tempfile
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

    version = integer("v")
    if version not in (1, 2):
        raise Malformed("field 'v' must be 1 or 2")
    seq = integer("seq")
    if seq < 1:
        raise Malformed("field 'seq' must be at least 1")
    if not valid_time(string("time")):
        raise Malformed("field 'time' must be RFC 3339 UTC with second precision (YYYY-MM-DDTHH:MM:SSZ)")
    for name in ("reason", "actor", "source", "planId", "action", "address"):
        if name in value:
            string(name)
    if version == 2:
        problem = personal_data_problem(value)
        if problem:
            raise Malformed(problem)
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


# ---------------------------------------------------------------- format 2: subject tokens (section 8)

HEX = set(b"0123456789abcdef")
LOCAL = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._%+-'")
DOMAIN = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789.-")


def pieces(text):
    """A format 2 string as [("text", str) | ("s"|"v", id)], or None when a '~' is stray (8.1)."""
    data = text.encode("utf-8")
    if b"~" not in data:
        return [("text", text)]
    out, literal, i = [], bytearray(), 0
    while i < len(data):
        if data[i] != 0x7E:
            literal.append(data[i])
            i += 1
        elif data[i + 1:i + 2] == b"~":
            literal.append(0x7E)
            i += 2
        elif data[i + 1:i + 3] in (b"s:", b"v:") and len(data) >= i + 35 and all(b in HEX for b in data[i + 3:i + 35]):
            if literal:
                out.append(("text", literal.decode("utf-8")))
            literal = bytearray()
            out.append((chr(data[i + 1]), data[i + 3:i + 35].decode("ascii")))
            i += 35
        else:
            return None
    if literal or not out:
        out.append(("text", literal.decode("utf-8")))
    return out


def email_shape(data):
    """The first e-mail-shaped run of the bytes (8.2), as (start, end), or None."""
    for at in range(len(data)):
        if data[at] != 0x40:
            continue
        start = at
        while start > 0 and data[start - 1] in LOCAL:
            start -= 1
        while start < at and data[start] in b".'":
            start += 1
        end = at + 1
        while end < len(data) and data[end] in DOMAIN:
            end += 1
        while end > at + 1 and data[end - 1] in b".-":
            end -= 1
        if start >= at or end <= at + 1:
            continue
        if b"." in data[at + 2:end - 1]:
            return start, end
    return None


def member_address(address):
    """(email part, is a tenant member) of tenant/T/member/E or tenant/T/team/S/member/E, else None."""
    parts = address.split("/", 5)
    if len(parts) >= 4 and parts[0] == "tenant":
        if parts[2] == "member":
            email = "/".join(parts[3:])
            return (email, True) if email else None
        if len(parts) == 6 and parts[2] == "team" and parts[4] == "member" and parts[5]:
            return parts[5], False
    return None


def personal_data_problem(value):
    """The format 2 rules of section 8.3; None when the entry keeps them."""
    problem = [None]

    def check(item, field):
        if problem[0] is not None:
            return
        if isinstance(item, str):
            found = pieces(item)
            if found is None:
                problem[0] = "field '%s' has a '~' that starts no token and is not doubled" % field
                return
            for kind, text in found:
                if kind == "text" and email_shape(text.encode("utf-8")) is not None:
                    problem[0] = "field '%s' holds an e-mail address instead of a subject token" % field
                    return
        elif isinstance(item, list):
            for element in item:
                check(element, field)
        elif isinstance(item, dict):
            for key in sorted(item, key=_utf16_key):
                check(item[key], field)

    check(value["actor"], "actor")
    if "@" in value["actor"] and problem[0] is None:
        problem[0] = "field 'actor' names a person without a subject token"
    check(value["address"], "address")
    check(value["source"], "source")
    for name in ("reason", "before", "after"):
        if name in value:
            check(value[name], name)
    if problem[0] is None:
        member = member_address(value["address"])
        if member:
            found = pieces(member[0])
            if not found or len(found) != 1 or found[0][0] != "s":
                return "field 'address' names a member without a subject token"
            if member[1]:
                for side in (value["before"], value["after"]):
                    if isinstance(side, dict) and side.get("expires") is not None:
                        token = pieces(side["expires"]) if isinstance(side["expires"], str) else None
                        if not token or len(token) != 1 or token[0][0] != "v":
                            return "a member's 'expires' must be null or a value token"
    return problem[0]


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


# ---------------------------------------------------------------- RFC 9162 Merkle tree


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


EMPTY_ROOT = hashlib.sha256(b"").digest()


class TreeBuilder:
    """The root of a growing tree in O(log n) memory: a stack of (level, hash) perfect subtrees."""

    def __init__(self):
        self.size = 0
        self.stack = []

    def append(self, leaf, completed=None):
        """Appends a leaf; completed(level, index, hash) is called for each perfect subtree above it that it completes."""
        level, digest = 0, leaf
        while self.stack and self.stack[-1][0] == level:
            digest = node_hash(self.stack.pop()[1], digest)
            level += 1
            if completed is not None:
                completed(level, self.size >> level, digest)
        self.stack.append((level, digest))
        self.size += 1

    def root(self):
        if not self.stack:
            return EMPTY_ROOT
        digest = self.stack[-1][1]
        for _, left in reversed(self.stack[:-1]):
            digest = node_hash(left, digest)
        return digest


def reference_root(leaves):
    """MTH by the RFC's recursive definition (self-test only)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(reference_root(leaves[:k]), reference_root(leaves[k:]))


def root_from_inclusion(index, size, leaf, proof):
    """RFC 9162 section 2.1.3.2; None when the proof cannot be for that position."""
    if index < 0 or index >= size or len(leaf) != 32:
        return None
    fn, sn, r = index, size - 1, leaf
    for p in proof:
        if len(p) != 32 or sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None


def verify_inclusion(index, size, leaf, proof, root):
    return len(root) == 32 and root_from_inclusion(index, size, leaf, proof) == root


def verify_consistency(size1, size2, root1, root2, proof):
    """RFC 9162 section 2.1.4.2, with transparency-dev's rules for equal sizes and size 0."""
    if size1 < 0 or size1 > size2:
        return False
    if size1 == size2:
        return not proof and root1 == root2
    if size1 == 0:
        return not proof
    if not proof or len(root1) != 32 or len(root2) != 32 or any(len(p) != 32 for p in proof):
        return False
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while not fn & 1 and fn != 0:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    return sn == 0 and fr == root1 and sr == root2


# ---------------------------------------------------------------- C2SP signed notes and formats


class Invalid(Exception):
    """A checkpoint, note, key or proof that does not verify or does not parse."""


def b64(text):
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:
        raise Invalid("'%s' is not base64" % text)
    if base64.b64encode(raw).decode() != text:
        raise Invalid("'%s' is not canonical base64" % text)
    return raw


def decimal(text):
    if not re.fullmatch(r"0|[1-9][0-9]*", text):
        raise Invalid("'%s' is not a decimal number without leading zeros" % text)
    return int(text)


def parse_verifier_key(text):
    """'<name>+<key id hex>+<base64(0x01 || public key)>' -> (name, key id, public key bytes)."""
    parts = text.strip().split("+", 2)
    if len(parts) != 3 or not parts[0] or re.search(r"[\s+]", parts[0]):
        raise Invalid("not a verifier key: expected <name>+<id>+<key>")
    name, key_id, material = parts
    raw = b64(material)
    if len(raw) != 33 or raw[0] != 1:
        raise Invalid("verifier key of '%s' is not an Ed25519 key" % name)
    expected = hashlib.sha256(name.encode() + b"\n\x01" + raw[1:]).digest()[:4]
    if key_id != expected.hex():
        raise Invalid("key id %s of '%s' does not match its key" % (key_id, name))
    return name, expected, raw[1:]


def ed25519_valid(public_key, signature, message):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except InvalidSignature:
        return False


def open_note(note, key):
    """Returns the text of a signed note after checking the signatures of `key` (name, id, public key)."""
    if not note.endswith("\n") or any(ord(c) < 0x20 and c != "\n" for c in note):
        raise Invalid("malformed note")
    lines = note[:-1].split("\n")
    blanks = [i for i, line in enumerate(lines) if line == ""]
    if not blanks or blanks[-1] == 0 or blanks[-1] == len(lines) - 1:
        raise Invalid("malformed note: no signatures after a blank line")
    cut = blanks[-1]
    text = "\n".join(lines[:cut]) + "\n"
    name, key_id, public_key = key
    found = 0
    for line in lines[cut + 1:]:
        match = re.fullmatch(r"\u2014 (\S+) (\S+)", line)
        if not match:
            raise Invalid("malformed signature line '%s'" % line)
        sig = b64(match.group(2))
        if match.group(1) == name and sig[:4] == key_id:
            if not ed25519_valid(public_key, sig[4:], text.encode()):
                raise Invalid("the signature by '%s' does not verify" % name)
            found += 1
    if not found:
        raise Invalid("no signature by key '%s'" % name)
    return text


def note_text(note):
    """The text of a checkpoint file without checking signatures (signed note, or bare text)."""
    lines = note[:-1].split("\n") if note.endswith("\n") else None
    if lines is None:
        raise Invalid("a checkpoint ends with a newline")
    if "" in lines:
        cut = len(lines) - 1 - lines[::-1].index("")
        return "\n".join(lines[:cut]) + "\n"
    return note


def parse_checkpoint(text):
    """(origin, size, root) of checkpoint note text."""
    lines = text[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or any(line == "" for line in lines[3:]):
        raise Invalid("a checkpoint has an origin, a size and a root hash line")
    root = b64(lines[2])
    if len(root) != 32:
        raise Invalid("the checkpoint's root hash is not 32 bytes")
    return lines[0], decimal(lines[1]), root


def checkpoint_of(content, key):
    """Checks the signature (when a key is given) and parses a checkpoint file."""
    text = open_note(content, key) if key else note_text(content)
    return parse_checkpoint(text)


def split_proof(content, first_line):
    lines = content.split("\n")
    if "" not in lines:
        raise Invalid("no blank line before the checkpoint")
    cut = lines.index("")
    head, checkpoint = lines[:cut], "\n".join(lines[cut + 1:])
    if not head or not head[0].startswith(first_line):
        raise Invalid("the proof does not start with '%s'" % first_line)
    return head, checkpoint


def parse_tlog_proof(content):
    head, checkpoint = split_proof(content, "c2sp.org/tlog-proof@v1")
    if head[0] != "c2sp.org/tlog-proof@v1":
        raise Invalid("not a c2sp.org/tlog-proof@v1")
    rest = head[1:]
    if rest and rest[0].startswith("extra "):
        rest = rest[1:]
    if not rest or not rest[0].startswith("index "):
        raise Invalid("no 'index N' line")
    return decimal(rest[0][6:]), [b64(line) for line in rest[1:]], checkpoint


def parse_consistency(content):
    head, checkpoint = split_proof(content, "old ")
    return decimal(head[0][4:]), [b64(line) for line in head[1:]], checkpoint


# ---------------------------------------------------------------- self-test with published vectors


def self_test():
    """transparency-dev/merkle vectors, the Go signed-note example, RFC 8032 TEST 1. Returns the number of checks."""
    h = bytes.fromhex
    leaves = [h(x) for x in ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"]]
    roots = [h(x) for x in [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"]]
    checks = 0

    def expect(condition, what):
        nonlocal checks
        checks += 1
        if not condition:
            raise AssertionError(what)

    hashes = [leaf_hash(x) for x in leaves]
    expect(EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", "empty root")
    builder = TreeBuilder()
    for n in range(8):
        builder.append(hashes[n])
        expect(builder.root() == roots[n] == reference_root(hashes[:n + 1]), "root of size %d" % (n + 1))
    inclusions = [
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (3, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"]),
        (2, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
    ]
    some = h("abacaba000000000000000000000000000000000000000000060061e00123456")
    for leaf, size, proof in inclusions:
        proof = [h(x) for x in proof]
        index, root, lh = leaf - 1, roots[size - 1], hashes[leaf - 1]
        expect(verify_inclusion(index, size, lh, proof, root), "inclusion %d/%d" % (leaf, size))
        bad = [(index - 1, size, lh, proof, root), (index + 1, size, lh, proof, root), (index ^ 2, size, lh, proof, root),
               (index, size * 2, lh, proof, root), (index, size // 2, lh, proof, root), (index, size, b"WrongLeaf", proof, root),
               (index, size, lh, proof, EMPTY_ROOT), (index, size, lh, proof, some), (index, size, lh, proof + [b""], root),
               (index, size, lh, proof + [root], root), (index, size, lh, [b""] + proof, root), (index, size, lh, [root] + proof, root),
               (index, size, lh, proof[:-1], root)]
        for i in range(len(proof)):
            wrong = list(proof)
            wrong[i] = bytes([wrong[i][0] ^ 8]) + wrong[i][1:]
            bad.append((index, size, lh, wrong, root))
        for probe in bad:
            expect(not verify_inclusion(*probe), "corrupted inclusion %d/%d verified" % (leaf, size))
    consistencies = [
        (1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"]),
        (6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
        (2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"]),
        (6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"]),
    ]
    for s1, s2, proof in consistencies:
        proof = [h(x) for x in proof]
        r1, r2 = roots[s1 - 1], roots[s2 - 1]
        expect(verify_consistency(s1, s2, r1, r2, proof), "consistency %d->%d" % (s1, s2))
        bad = [(s1 - 1, s2, r1, r2, proof), (s1 + 1, s2, r1, r2, proof), (s1 ^ 2, s2, r1, r2, proof), (s1, s2 * 2, r1, r2, proof),
               (s1, s2 // 2, r1, r2, proof), (s1, s2, b"WrongRoot", r2, proof), (s1, s2, r1, b"WrongRoot", proof),
               (s1, s2, r2, r1, proof), (s1, s2, r1, r2, []), (s1, s2, r1, r2, proof + [b""]), (s1, s2, r1, r2, proof + [r1]),
               (s1, s2, r1, r2, proof + [r2]), (s1, s2, r1, r2, [b""] + proof), (s1, s2, r1, r2, [r1] + proof),
               (s1, s2, r1, r2, [r2] + proof), (s1, s2, r1, r2, [proof[0]] + proof), (s1, s2, r1, r2, proof[:-1])]
        for i in range(len(proof)):
            wrong = list(proof)
            wrong[i] = bytes([wrong[i][0] ^ 16]) + wrong[i][1:]
            bad.append((s1, s2, r1, r2, wrong))
        for probe in bad:
            expect(not verify_consistency(*probe), "corrupted consistency %d->%d verified" % (s1, s2))
    # The signed-note example of golang.org/x/mod/sumdb/note.
    key = parse_verifier_key("PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW")
    text = "If you think cryptography is the answer to your problem,\nthen you don't know what your problem is.\n"
    note = text + "\n\u2014 PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n"
    expect(open_note(note, key) == text, "the example note verifies")
    try:
        open_note(note.replace("cryptography", "cryptographY"), key)
        expect(False, "an edited note verified")
    except Invalid:
        expect(True, "")
    # RFC 8032 section 7.1, TEST 1.
    expect(ed25519_valid(h("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a"),
                         h("e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
                         b""), "RFC 8032 TEST 1")
    return checks


# ---------------------------------------------------------------- command line


def verifier_key(value):
    """--key: the verifier key itself ('<name>+<id>+<key>') or the file holding it."""
    try:
        return parse_verifier_key(value)
    except Invalid:
        if value.count("+") >= 2 and not os.path.exists(value):
            raise
    return parse_verifier_key(read_text(value))


def stored_level(level):
    """orgctl_merkle keeps the levels 4, 8, 12, ... (docs/audit-chain.md 7.1)."""
    return level > 0 and level % 4 == 0


def copy_from_postgres(uri, schema, folder):
    """Copies orgctl_audit and orgctl_merkle of `schema` at the server `uri` into a new SQLite file
    in `folder`, through psql (the standard library has no PostgreSQL client), in one snapshot.
    Returns the file's path; raises OSError when psql fails."""
    quoted = '"%s"' % schema.replace('"', '""')
    script = (
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;\n"
        "COPY (SELECT 'a', seq, encode(entry, 'hex'), encode(prev_hash, 'hex'), encode(hash, 'hex') FROM %s.orgctl_audit ORDER BY seq) TO STDOUT;\n"
        "COPY (SELECT 'm', level, idx, encode(hash, 'hex'), '' FROM %s.orgctl_merkle) TO STDOUT;\n"
        "COMMIT;\n" % (quoted, quoted))
    path = os.path.join(folder, "state.db")
    copy = sqlite3.connect(path)
    copy.execute("CREATE TABLE orgctl_audit (seq INTEGER PRIMARY KEY, entry BLOB NOT NULL, prev_hash BLOB NOT NULL, hash BLOB NOT NULL)")
    copy.execute("CREATE TABLE orgctl_merkle (level INTEGER NOT NULL, idx INTEGER NOT NULL, hash BLOB NOT NULL, PRIMARY KEY (level, idx))")
    process = subprocess.Popen([os.environ.get("PSQL", "psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", uri],
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    process.stdin.write(script.encode())
    process.stdin.close()
    for line in process.stdout:  # streamed: one row in memory at a time
        kind, first, second, third, fourth = line.rstrip(b"\n").decode().split("\t")
        if kind == "a":
            copy.execute("INSERT INTO orgctl_audit VALUES (?, ?, ?, ?)", (int(first), bytes.fromhex(second), bytes.fromhex(third), bytes.fromhex(fourth)))
        else:
            copy.execute("INSERT INTO orgctl_merkle VALUES (?, ?, ?)", (int(first), int(second), bytes.fromhex(third)))
    error = process.stderr.read().decode(errors="replace").strip()
    if process.wait() != 0:
        lines = error.splitlines()
        raise OSError("psql failed: %s" % next((line for line in lines if line.startswith(("ERROR", "psql: error"))), lines[0] if lines else "no message"))
    copy.commit()
    copy.close()
    return path


def read_text(path):
    try:
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise OSError("cannot read %s: %s" % (path, error))


def main(argv):
    parser = argparse.ArgumentParser(description="Re-verify the audit chain of an orgctl state database, its checkpoints and proofs.")
    parser.add_argument("database", metavar="STATE.db", nargs="?", help="path to the SQLite state database, or a postgresql:// URI")
    parser.add_argument("--schema", default="orgctl", metavar="NAME", help="the PostgreSQL schema of orgctl's tables (default orgctl)")
    parser.add_argument("--checkpoint", action="append", default=[], metavar="FILE", help="a checkpoint the log must match")
    parser.add_argument("--key", metavar="PUBKEY", help="verifier key (<name>+<id>+<key>) or its file: every checkpoint must carry its valid signature")
    parser.add_argument("--proof", action="append", default=[], metavar="FILE", help="a tlog-proof of an entry of the log")
    parser.add_argument("--consistency", metavar="FILE", help="a consistency proof ('old N', hashes, checkpoint); needs --old")
    parser.add_argument("--old", metavar="CHECKPOINT", help="the older checkpoint the consistency proof starts from")
    parser.add_argument("--self-test", action="store_true", help="check the published test vectors and exit")
    args = parser.parse_args(argv)  # exits 2 on a usage error

    if args.self_test:
        try:
            print("self-test ok: %d checks" % self_test())
            return 0
        except (AssertionError, Invalid) as error:
            print("self-test failed: %s" % error)
            return 1
    if args.database is None:
        parser.error("STATE.db is required")
    if bool(args.consistency) != bool(args.old):
        parser.error("--consistency and --old go together")

    key = None
    try:
        if args.key:
            key = verifier_key(args.key)
        checkpoints = [(path, checkpoint_of(read_text(path), key)) for path in args.checkpoint]
        proofs = []
        for path in args.proof:
            index, hashes, embedded = parse_tlog_proof(read_text(path))
            proofs.append((path, index, hashes, checkpoint_of(embedded, key)))
        consistency = None
        if args.consistency:
            old_size, hashes, embedded = parse_consistency(read_text(args.consistency))
            consistency = (old_size, hashes, checkpoint_of(embedded, key), checkpoint_of(read_text(args.old), key))
    except (OSError, Invalid) as error:
        # A checkpoint or proof that does not verify is a failed check, not a usage error.
        print("failed: %s" % error)
        return 2 if isinstance(error, OSError) else 1
    except ImportError:
        print("error: checking Ed25519 signatures needs the Python package 'cryptography'", file=sys.stderr)
        return 2

    wanted_sizes = {c[1] for _, c in checkpoints} | {p[3][1] for p in proofs}
    wanted_leaves = {p[1] for p in proofs}
    if args.database.startswith(("postgres://", "postgresql://")):
        folder = tempfile.TemporaryDirectory(prefix="verify-audit-")
        try:
            args.database = copy_from_postgres(args.database, args.schema, folder.name)
        except (OSError, ValueError) as error:
            print("error: cannot read the PostgreSQL state: %s" % error, file=sys.stderr)
            return 2
    uri = "file:%s?mode=ro" % urllib.parse.quote(args.database)
    try:
        connection = sqlite3.connect(uri, uri=True)
    except sqlite3.Error as error:
        print("error: cannot open %s: %s" % (args.database, error), file=sys.stderr)
        return 2
    count, head, broken = 0, GENESIS, None
    tree, roots, leaves = TreeBuilder(), {0: EMPTY_ROOT}, {}
    # The stored tree (orgctl_merkle, when the database has one): every node must be the node of the entries.
    tree_problem, compared = None, 0
    try:
        has_tree = connection.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'orgctl_merkle'").fetchone() is not None
    except sqlite3.Error as error:
        print("error: cannot read %s: %s" % (args.database, error), file=sys.stderr)
        return 2

    def compare(level, index, digest):
        nonlocal tree_problem, compared
        if not has_tree or tree_problem is not None or not stored_level(level):
            return
        compared += 1
        row = connection.execute("SELECT hash FROM orgctl_merkle WHERE level = ? AND idx = ?", (level, index)).fetchone()
        if row is None:
            tree_problem = "the stored audit tree has no node at level %d, index %d" % (level, index)
        elif row[0] != digest:
            tree_problem = "the stored audit tree's node at level %d, index %d is not the hash of the entries it covers" % (level, index)

    try:
        cursor = connection.execute("SELECT seq, entry, prev_hash, hash FROM orgctl_audit ORDER BY seq")
        for record in cursor:  # streamed: one row in memory at a time
            if broken is None:
                problem = check(record, count, head)
                if problem is not None:
                    broken = "broken at entry %s: %s" % (record[0], problem)
                else:
                    count, head = count + 1, record[3]
            if not (checkpoints or proofs) and broken is not None:
                break
            leaf = leaf_hash(record[1] if isinstance(record[1], bytes) else b"")
            if tree.size in wanted_leaves:
                leaves[tree.size] = leaf
            tree.append(leaf, compare)
            if tree.size in wanted_sizes:
                roots[tree.size] = tree.root()
        if has_tree and tree_problem is None and broken is None:
            stored = connection.execute("SELECT count(*) FROM orgctl_merkle").fetchone()[0]
            if stored != compared:
                tree_problem = "the stored audit tree holds %d rows that are no node of the entries' tree" % (stored - compared)
    except sqlite3.Error as error:
        print("error: cannot read the audit table of %s: %s" % (args.database, error), file=sys.stderr)
        return 2
    finally:
        connection.close()

    oks, problems = [], []
    for path, (origin, size, root) in checkpoints:
        if size > tree.size:
            problems.append("checkpoint %s: the log has %d entries, fewer than the checkpoint's %d" % (path, tree.size, size))
        elif roots.get(size) != root:
            problems.append("checkpoint %s: the log's first %d entries do not have the checkpoint's root" % (path, size))
        else:
            oks.append("ok: checkpoint %s (%s, size %d%s) matches the log" % (path, origin, size, ", signature verified" if key else ""))
    for path, index, hashes, (origin, size, root) in proofs:
        if index not in leaves or not verify_inclusion(index, size, leaves[index], hashes, root):
            problems.append("proof %s: entry %d is not proven to be in the checkpoint of size %d" % (path, index + 1, size))
        elif roots.get(size) != root:
            problems.append("proof %s: its checkpoint (size %d) does not match the log" % (path, size))
        else:
            oks.append("ok: proof %s: entry %d is in the log of size %d" % (path, index + 1, size))
    if consistency:
        old_size, hashes, (_, new_size, new_root), (_, checkpoint_size, old_root) = consistency
        if old_size != checkpoint_size or not verify_consistency(old_size, new_size, old_root, new_root, hashes):
            problems.append("consistency %s: does not prove that the log of size %d extends %s" % (args.consistency, new_size, args.old))
        else:
            oks.append("ok: consistency %s: the log of size %d extends the checkpoint of size %d" % (args.consistency, new_size, old_size))
    if broken is not None:
        problems.append(broken)
    else:
        oks.append("ok: %d entries, head %s" % (count, head.hex()))
    if tree_problem is not None and broken is None:  # an edited entry changes the nodes above it too: the break says more
        problems.append(tree_problem)
    # Every "ok" before any problem: no "ok" line follows a failure.
    for line in oks + problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
