#ifndef CSQLITE_SHIM_H
#define CSQLITE_SHIM_H
#include <sqlite3.h>

// SQLITE_TRANSIENT is `((sqlite3_destructor_type)-1)`: a cast macro that the
// Clang importer cannot bring into Swift. Wrap the binders that need it.
static inline int csqlite_bind_text_transient(sqlite3_stmt *stmt, int index,
                                              const char *text, int byteCount) {
    return sqlite3_bind_text(stmt, index, text, byteCount, SQLITE_TRANSIENT);
}

static inline int csqlite_bind_blob_transient(sqlite3_stmt *stmt, int index,
                                              const void *bytes, int byteCount) {
    return sqlite3_bind_blob(stmt, index, bytes, byteCount, SQLITE_TRANSIENT);
}

// 64-bit length variants: no silent truncation of the byte count to `int`.
// Text is always UTF-8 with an explicit byte length, so embedded NULs survive.
// `text` and `bytes` must not be NULL (a NULL pointer binds SQL NULL).
static inline int csqlite_bind_text64_transient(sqlite3_stmt *stmt, int index,
                                                const char *text,
                                                sqlite3_uint64 byteCount) {
    return sqlite3_bind_text64(stmt, index, text, byteCount, SQLITE_TRANSIENT,
                               SQLITE_UTF8);
}

static inline int csqlite_bind_blob64_transient(sqlite3_stmt *stmt, int index,
                                                const void *bytes,
                                                sqlite3_uint64 byteCount) {
    return sqlite3_bind_blob64(stmt, index, bytes, byteCount, SQLITE_TRANSIENT);
}
#endif
