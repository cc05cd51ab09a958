#ifndef CBUILDINFO_SHIM_H
#define CBUILDINFO_SHIM_H
// The commit orgctl is built from. SwiftPM has no build-time values without plugins, and the
// Swift compiler's -D takes no value; a C define does, and reaches Swift through this function:
//     swift build -c release -Xcc -DORGCTL_BUILD_COMMIT="\"$(git rev-parse HEAD)\""
// Without it the commit is empty and `orgctl version` says "unknown". (A macro given on the
// command line is not imported into Swift by itself, hence the function.)
#ifndef ORGCTL_BUILD_COMMIT
#define ORGCTL_BUILD_COMMIT ""
#endif
static inline const char *cbuildinfo_commit(void) { return ORGCTL_BUILD_COMMIT; }
#endif
