#!/usr/bin/env python3
"""Checks, independently of orgctl, which state key a state database is written with.

    tools/check_state_key.py STATE KEY [KEY ...] [--schema NAME]

STATE is a SQLite file or a postgres:// URI (read with psql, in --schema, default orgctl).
Each KEY is 32 bytes in base64 or hex, as ORGCTL_STATE_KEY takes it. For each key this reads
docs/architecture.md's recipe ("Secrets at rest") with Python's `cryptography` (HKDF-SHA256,
HMAC-SHA256, AES-256-GCM) and reports, as one JSON object per line:

  key_id       the key's id (first 16 hex digits of SHA-256("orgctl key id v1" || key))
  matches      orgctl_meta.state_key_check is this key's check value
  secrets      sealed secrets stored (webhooks.secret, sso_providers.clientSecret)
  opened       of them, those that open with this key (AES-256-GCM, address#attribute as AAD)
  key_ids      of them, those whose <prefix>_key_id names this key
  fingerprints of them, those whose stored fingerprint is this key's HMAC of the opened value

Exit status: 0 when exactly one key matches and opens every secret, with every key id and
fingerprint its own, and every other key matches nothing and opens nothing; 1 otherwise; 2 on
a usage or read error. Used by tools/rekey-crash-loop.sh and the rekey tests.
"""
import argparse
import base64
import binascii
import hashlib
import hmac
import json
import sqlite3
import subprocess
import sys

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

SEALED = [("webhooks", "secret", "webhook", "secret"), ("sso_providers", "client_secret", "sso", "clientSecret")]
VERBATIM = set(b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.-_@+'")


def decode_key(text):
    text = text.strip()
    if len(text) == 64:
        try:
            return bytes.fromhex(text)
        except ValueError:
            pass
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 32:
        raise ValueError("a state key has 32 bytes")
    return raw


def derive(key, info):
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"orgctl", info=info.encode()).derive(key)


def segment(raw):
    if raw and all(b in VERBATIM for b in raw):
        return raw.decode()
    if not raw:
        return "%"
    return "".join(chr(b) if b in VERBATIM else "%%%02X" % b for b in raw)


def rows_sqlite(path, sql):
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    connection.text_factory = bytes
    try:
        return connection.execute(sql).fetchall()
    finally:
        connection.close()


def rows_postgres(uri, schema, sql, columns):
    # Every column as hex text (bytea and text alike), one row per line, '|' between columns.
    hexed = ", ".join(f"encode(convert_to(coalesce({c}::text, ''), 'UTF8'), 'hex') || CASE WHEN {c} IS NULL THEN 'N' ELSE '' END"
                      if not c.endswith("_ciphertext") else f"coalesce(encode({c}, 'hex'), 'N')" for c in columns)
    query = f"SET search_path TO \"{schema}\"; SELECT {hexed} FROM ({sql}) q"
    out = subprocess.run(["psql", uri, "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", query],
                         check=True, capture_output=True, text=True).stdout
    rows = []
    for line in out.splitlines():
        if not line:
            continue
        rows.append(tuple(None if v.endswith("N") else bytes.fromhex(v) for v in line.split("|")))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("state")
    parser.add_argument("keys", nargs="+")
    parser.add_argument("--schema", default="orgctl")
    args = parser.parse_args()
    postgres = args.state.startswith(("postgres://", "postgresql://"))

    def query(sql, columns):
        if postgres:
            return rows_postgres(args.state, args.schema, sql, columns)
        return [tuple(v.encode() if isinstance(v, str) else v for v in row) for row in rows_sqlite(args.state, sql)]

    try:
        meta = dict(query("SELECT key, value FROM orgctl_meta", ["key", "value"]))
        secrets = []
        for table, prefix, kind, attribute in SEALED:
            columns = ["slug", "name", f"{prefix}_ciphertext", f"{prefix}_key_id", f"{prefix}_fingerprint"]
            sql = (f"SELECT t.slug, s.name, s.{prefix}_ciphertext, s.{prefix}_key_id, s.{prefix}_fingerprint FROM {table} s "
                   f"JOIN tenants t ON t.id = s.tenant_id WHERE s.{prefix}_ciphertext IS NOT NULL")
            for slug, name, sealed, key_id, fingerprint in query(sql, columns):
                aad = f"tenant/{segment(slug)}/{kind}/{segment(name)}#{attribute}".encode()
                secrets.append((bytes(sealed), aad, key_id, fingerprint))
        keys = [decode_key(k) for k in args.keys]
    except (sqlite3.Error, subprocess.CalledProcessError, ValueError, binascii.Error) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2

    results = []
    for key in keys:
        key_id = hashlib.sha256(b"orgctl key id v1" + key).hexdigest()[:16]
        check = hmac.new(derive(key, "orgctl key check v1"), b"orgctl state key check v1", hashlib.sha256).hexdigest()
        aead = AESGCM(derive(key, "orgctl secret encryption v1"))
        fingerprint_key = derive(key, "orgctl secret fingerprint v1")
        opened = ids = prints = 0
        for sealed, aad, stored_id, stored_print in secrets:
            try:
                value = aead.decrypt(sealed[:12], sealed[12:], aad)
            except InvalidTag:
                continue
            opened += 1
            ids += stored_id == key_id.encode()
            prints += stored_print == ("hmac-sha256:" + hmac.new(fingerprint_key, value, hashlib.sha256).hexdigest()).encode()
        result = {"key_id": key_id, "matches": meta.get(b"state_key_check") == check.encode(), "secrets": len(secrets),
                  "opened": opened, "key_ids": ids, "fingerprints": prints}
        results.append(result)
        print(json.dumps(result, sort_keys=True))
    good = [r for r in results if r["matches"] and r["opened"] == r["secrets"] == r["key_ids"] == r["fingerprints"]]
    others = [r for r in results if r not in good]
    clean = all(not r["matches"] and r["opened"] == 0 for r in others)
    return 0 if len(good) == 1 and clean else 1


if __name__ == "__main__":
    sys.exit(main())
