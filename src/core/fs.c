/*
 * fs.c — file-system helpers: mkdir -p, whole-file reads, and atomic writes
 * (temporary name, fsync, rename, fsync of the directory) so that a crash
 * never leaves a half-written file under its real name
 * (docs/architecture.md "File formats").
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/core.h"

int tg_path_is_dir(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int tg_path_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0;
}

char *tg_path_join(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    char *s = malloc(la + lb + 2);
    if (!s) return NULL;
    memcpy(s, a, la);
    size_t k = la;
    if (k > 0 && s[k - 1] != '/') s[k++] = '/';
    memcpy(s + k, b, lb + 1);
    return s;
}

int tg_mkdirs(const char *path) {
    char *p = strdup(path);
    if (!p) return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    for (char *c = p + 1;; c++) {
        if (*c == '/' || *c == 0) {
            char saved = *c;
            *c = 0;
            if (mkdir(p, 0755) != 0 && errno != EEXIST) {
                int e = errno;
                free(p);
                return tg_error_set(TG_ERR_INPUT, "%s: cannot create directory: %s", path, strerror(e));
            }
            *c = saved;
            if (saved == 0) break;
        }
    }
    free(p);
    if (!tg_path_is_dir(path)) return tg_error_set(TG_ERR_INPUT, "%s: exists and is not a directory", path);
    return TG_OK;
}

int tg_read_file(const char *path, char **data, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return tg_error_set(TG_ERR_INPUT, "%s: cannot open: %s", path, strerror(errno));
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return tg_error_set(TG_ERR_INPUT, "%s: cannot seek (not a regular file?)", path);
    }
    long n = ftell(f);
    rewind(f);
    if (n < 0) {
        fclose(f);
        return tg_error_set(TG_ERR_INPUT, "%s: cannot read size", path);
    }
    char *buf = malloc((size_t)n + 1);
    if (!buf) {
        fclose(f);
        return tg_error_set(TG_ERR_RUNTIME, "%s: out of memory reading %ld bytes", path, n);
    }
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return tg_error_set(TG_ERR_INPUT, "%s: short read", path);
    }
    fclose(f);
    buf[n] = 0;
    *data = buf;
    if (len) *len = (size_t)n;
    return TG_OK;
}

static void fsync_parent_dir(const char *path) {
    char *copy = strdup(path);
    if (!copy) return;
    int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
    free(copy);
}

int tg_atomic_open(tg_atomic_file *af, const char *path) {
    memset(af, 0, sizeof *af);
    af->path = strdup(path);
    size_t n = strlen(path) + 32;
    af->tmp = malloc(n);
    if (!af->path || !af->tmp) {
        tg_atomic_abort(af);
        return tg_error_set(TG_ERR_RUNTIME, "out of memory");
    }
    snprintf(af->tmp, n, "%s.tmp.%d", path, (int)getpid());
    af->f = fopen(af->tmp, "wb");
    if (!af->f) {
        int e = errno;
        free(af->path);
        free(af->tmp);
        memset(af, 0, sizeof *af);
        return tg_error_set(TG_ERR_INPUT, "%s: cannot write: %s", path, strerror(e));
    }
    return TG_OK;
}

int tg_atomic_commit(tg_atomic_file *af) {
    int rc = TG_OK;
    if (fflush(af->f) != 0 || ferror(af->f) || fsync(fileno(af->f)) != 0) {
        rc = tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", af->path, strerror(errno));
    }
    if (fclose(af->f) != 0 && rc == TG_OK) rc = tg_error_set(TG_ERR_RUNTIME, "%s: close failed: %s", af->path, strerror(errno));
    af->f = NULL;
    if (rc == TG_OK && rename(af->tmp, af->path) != 0) {
        rc = tg_error_set(TG_ERR_RUNTIME, "%s: rename failed: %s", af->path, strerror(errno));
    }
    if (rc != TG_OK) unlink(af->tmp);
    else fsync_parent_dir(af->path);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
    return rc;
}

void tg_atomic_abort(tg_atomic_file *af) {
    if (af->f) fclose(af->f);
    if (af->tmp) unlink(af->tmp);
    free(af->path);
    free(af->tmp);
    memset(af, 0, sizeof *af);
}

int tg_write_file_atomic(const char *path, const void *data, size_t len) {
    tg_atomic_file af;
    TG_TRY(tg_atomic_open(&af, path));
    if (len && fwrite(data, 1, len, af.f) != len) {
        int e = errno;
        tg_atomic_abort(&af);
        return tg_error_set(TG_ERR_RUNTIME, "%s: write failed: %s", path, strerror(e));
    }
    return tg_atomic_commit(&af);
}
