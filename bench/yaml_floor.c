/*
 * yaml_floor: the least work any loader of an orgctl configuration has to do, used by
 * bench/run.sh as the floor that orgctl's own commands are compared with.
 *
 *   yaml_floor DIR [--state DB]
 *
 * 1. Finds every *.yaml / *.yml file under DIR (recursively, hidden entries skipped, sorted
 *    bytewise), like orgctl's ConfigurationLoader.
 * 2. Reads each file fully into memory and runs libyaml's event parser over it with
 *    yaml_parser_set_input_string, deleting each event; nothing is kept. One thread.
 * 3. With --state DB: opens the SQLite file read-only and steps through every row of every
 *    table (SELECT * FROM each table in sqlite_schema), touching every column value, which is
 *    the least a `plan` has to read from the state database.
 *
 * Prints one summary line (files, bytes, events, documents, tables, rows) so a run can be
 * checked to have done the work. Exit status 0, or 1 on any read, parse or database error.
 *
 * Build: cc -O2 -o yaml_floor yaml_floor.c -lyaml -lsqlite3
 */
#define _XOPEN_SOURCE 700
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <sqlite3.h>
#include <yaml.h>

struct list {
    char **items;
    size_t count, capacity;
};

static void die(const char *what, const char *detail) {
    fprintf(stderr, "yaml_floor: %s: %s\n", what, detail);
    exit(1);
}

static void push(struct list *list, char *item) {
    if (list->count == list->capacity) {
        list->capacity = list->capacity ? list->capacity * 2 : 256;
        list->items = realloc(list->items, list->capacity * sizeof *list->items);
        if (!list->items) die("out of memory", "file list");
    }
    list->items[list->count++] = item;
}

static int has_yaml_extension(const char *name) {
    const char *dot = strrchr(name, '.');
    return dot && (strcmp(dot, ".yaml") == 0 || strcmp(dot, ".yml") == 0);
}

static void walk(const char *dir, struct list *files) {
    DIR *d = opendir(dir);
    if (!d) die(dir, strerror(errno));
    struct dirent *entry;
    while ((entry = readdir(d))) {
        if (entry->d_name[0] == '.') continue; /* ".", ".." and hidden entries */
        size_t length = strlen(dir) + 1 + strlen(entry->d_name) + 1;
        char *path = malloc(length);
        if (!path) die("out of memory", "path");
        snprintf(path, length, "%s/%s", dir, entry->d_name);
        struct stat st;
        if (stat(path, &st) != 0) die(path, strerror(errno));
        if (S_ISDIR(st.st_mode)) {
            walk(path, files);
            free(path);
        } else if (S_ISREG(st.st_mode) && has_yaml_extension(entry->d_name)) {
            push(files, path);
        } else {
            free(path);
        }
    }
    closedir(d);
}

static int compare_paths(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static unsigned char *read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) die(path, strerror(errno));
    struct stat st;
    if (fstat(fileno(f), &st) != 0) die(path, strerror(errno));
    unsigned char *buffer = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!buffer) die("out of memory", path);
    *size = fread(buffer, 1, (size_t)st.st_size, f);
    if (*size != (size_t)st.st_size || ferror(f)) die(path, "short read");
    fclose(f);
    return buffer;
}

static void parse(const char *path, const unsigned char *buffer, size_t size,
                  unsigned long long *events, unsigned long long *documents) {
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) die("out of memory", "yaml_parser_initialize");
    yaml_parser_set_input_string(&parser, buffer, size);
    yaml_parser_set_encoding(&parser, YAML_UTF8_ENCODING);
    for (;;) {
        yaml_event_t event;
        if (!yaml_parser_parse(&parser, &event)) {
            fprintf(stderr, "yaml_floor: %s:%zu:%zu: %s\n", path, parser.problem_mark.line + 1,
                    parser.problem_mark.column + 1, parser.problem ? parser.problem : "parse error");
            exit(1);
        }
        yaml_event_type_t type = event.type;
        yaml_event_delete(&event);
        (*events)++;
        if (type == YAML_DOCUMENT_START_EVENT) (*documents)++;
        if (type == YAML_STREAM_END_EVENT) break;
    }
    yaml_parser_delete(&parser);
}

static void scan_state(const char *path, unsigned long long *tables, unsigned long long *rows) {
    sqlite3 *db;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        die(path, db ? sqlite3_errmsg(db) : "cannot open");
    sqlite3_stmt *list;
    if (sqlite3_prepare_v2(db, "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name", -1,
                           &list, NULL) != SQLITE_OK)
        die(path, sqlite3_errmsg(db));
    unsigned long long checksum = 0;
    while (sqlite3_step(list) == SQLITE_ROW) {
        const char *table = (const char *)sqlite3_column_text(list, 0);
        char *sql = sqlite3_mprintf("SELECT * FROM \"%w\"", table);
        sqlite3_stmt *select;
        if (sqlite3_prepare_v2(db, sql, -1, &select, NULL) != SQLITE_OK) die(table, sqlite3_errmsg(db));
        sqlite3_free(sql);
        int columns = sqlite3_column_count(select);
        int rc;
        while ((rc = sqlite3_step(select)) == SQLITE_ROW) {
            for (int c = 0; c < columns; c++) {
                /* Materialise every value, as a reader building rows must. */
                switch (sqlite3_column_type(select, c)) {
                case SQLITE_INTEGER: checksum += (unsigned long long)sqlite3_column_int64(select, c); break;
                case SQLITE_FLOAT: checksum += (unsigned long long)sqlite3_column_double(select, c); break;
                case SQLITE_TEXT: sqlite3_column_text(select, c); checksum += (unsigned)sqlite3_column_bytes(select, c); break;
                case SQLITE_BLOB: sqlite3_column_blob(select, c); checksum += (unsigned)sqlite3_column_bytes(select, c); break;
                default: break;
                }
            }
            (*rows)++;
        }
        if (rc != SQLITE_DONE) die(table, sqlite3_errmsg(db));
        sqlite3_finalize(select);
        (*tables)++;
    }
    sqlite3_finalize(list);
    sqlite3_close(db);
    if (checksum == 42) fputc('\0', stderr); /* keeps the reads observable */
}

int main(int argc, char **argv) {
    const char *dir = NULL, *state = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--state") == 0 && i + 1 < argc) state = argv[++i];
        else if (argv[i][0] == '-') die("usage", "yaml_floor DIR [--state DB]");
        else if (!dir) dir = argv[i];
        else die("usage", "yaml_floor DIR [--state DB]");
    }
    if (!dir) die("usage", "yaml_floor DIR [--state DB]");

    struct list files = {0};
    struct stat st;
    if (stat(dir, &st) != 0) die(dir, strerror(errno));
    if (S_ISDIR(st.st_mode)) walk(dir, &files);
    else push(&files, strdup(dir));
    qsort(files.items, files.count, sizeof *files.items, compare_paths);
    if (files.count == 0) die(dir, "no *.yaml or *.yml files");

    unsigned long long bytes = 0, events = 0, documents = 0, tables = 0, rows = 0;
    for (size_t i = 0; i < files.count; i++) {
        size_t size;
        unsigned char *buffer = read_file(files.items[i], &size);
        bytes += size;
        parse(files.items[i], buffer, size, &events, &documents);
        free(buffer);
        free(files.items[i]);
    }
    free(files.items);
    if (state) scan_state(state, &tables, &rows);

    printf("files %zu bytes %llu events %llu documents %llu", files.count, bytes, events, documents);
    if (state) printf(" tables %llu rows %llu", tables, rows);
    printf("\n");
    return 0;
}
