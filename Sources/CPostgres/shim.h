#ifndef CPOSTGRES_SHIM_H
#define CPOSTGRES_SHIM_H
#include <libpq-fe.h>

// The PG_DIAG_* field codes are character-literal macros; name them for Swift.
static inline int cpostgres_diag_sqlstate(void) { return PG_DIAG_SQLSTATE; }
static inline int cpostgres_diag_message_primary(void) { return PG_DIAG_MESSAGE_PRIMARY; }
static inline int cpostgres_diag_message_detail(void) { return PG_DIAG_MESSAGE_DETAIL; }
static inline int cpostgres_diag_message_hint(void) { return PG_DIAG_MESSAGE_HINT; }

// Notices (and warnings) the server sends are dropped: libpq's default receiver prints
// them on stderr, which orgctl owns. A plain C function, so no Swift closure crosses.
static inline void cpostgres_ignore_notice(void *arg, const PGresult *result) {
    (void)arg;
    (void)result;
}

static inline void cpostgres_silence_notices(PGconn *conn) {
    PQsetNoticeReceiver(conn, cpostgres_ignore_notice, (void *)0);
}
#endif
