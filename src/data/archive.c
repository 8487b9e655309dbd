/*
 * archive.c — reads members of .zip and .tar(.gz/.bz2/.xz) archives for
 * ingest through libarchive: X exports are zips, Mastodon exports zips or
 * tarballs. Only the members ingest wants are decompressed; media files are
 * skipped without being inflated into memory.
 */
#include <archive.h>
#include <archive_entry.h>
#include <string.h>

#include "core/core.h"
#include "data/ingest.h"

static struct archive *open_archive(const char *path) {
    struct archive *a = archive_read_new();
    if (!a) return NULL;
    archive_read_support_filter_all(a);
    archive_read_support_format_zip(a);
    archive_read_support_format_tar(a);
    archive_read_support_format_gnutar(a);
    if (archive_read_open_filename(a, path, 1 << 16) != ARCHIVE_OK) {
        tg_error_set(TG_ERR_INPUT, "%s: not a zip or tar archive (%s)", path, archive_error_string(a));
        archive_read_free(a);
        return NULL;
    }
    return a;
}

/* Member names without a leading "./" (tar) so that they compare equal. */
static const char *member_name(struct archive_entry *e) {
    const char *n = archive_entry_pathname(e);
    if (!n) return "";
    while (n[0] == '.' && n[1] == '/') n += 2;
    return n;
}

int tg_archive_each(const char *path, int (*want)(void *ctx, const char *member), tg_member_fn fn, void *ctx,
                    size_t max_member, tg_ingest *g) {
    struct archive *a = open_archive(path);
    if (!a) return TG_ERR_INPUT;
    struct archive_entry *e;
    int rc = TG_OK, r, entries = 0;
    while (rc == TG_OK && (r = archive_read_next_header(a, &e)) == ARCHIVE_OK) {
        entries++;
        const char *name = member_name(e);
        if (archive_entry_filetype(e) != AE_IFREG || !want(ctx, name)) continue;
        /* Zip members may not declare a size: read in growing chunks. */
        size_t cap = archive_entry_size_is_set(e) && archive_entry_size(e) > 0 ? (size_t)archive_entry_size(e) + 1
                                                                                : (size_t)1 << 20;
        if (cap > max_member + 1) cap = max_member + 1;
        char *data = malloc(cap);
        size_t len = 0;
        if (!data) {
            rc = tg_error_set(TG_ERR_RUNTIME, "%s/%s: out of memory (%zu bytes)", path, name, cap);
            break;
        }
        for (;;) {
            if (len + 1 >= cap) {
                if (cap > max_member) {
                    rc = tg_error_set(TG_ERR_INPUT, "%s/%s: member larger than %zu bytes", path, name, max_member);
                    break;
                }
                size_t ncap = cap * 2 > max_member + 1 ? max_member + 1 : cap * 2;
                char *nd = realloc(data, ncap);
                if (!nd) {
                    rc = tg_error_set(TG_ERR_RUNTIME, "%s/%s: out of memory", path, name);
                    break;
                }
                data = nd;
                cap = ncap;
            }
            la_ssize_t n = archive_read_data(a, data + len, cap - 1 - len);
            if (n < 0) {
                rc = tg_error_set(TG_ERR_INPUT, "%s/%s: corrupt archive member (%s)", path, name,
                                  archive_error_string(a));
                break;
            }
            if (n == 0) break;
            len += (size_t)n;
        }
        if (rc == TG_OK) {
            data[len] = 0;
            rc = fn(ctx, name, data, len);
        }
        free(data);
        if (g) tg_ingest_progress(g, (int64_t)archive_filter_bytes(a, -1));
    }
    if (rc == TG_OK && r != ARCHIVE_EOF)
        rc = tg_error_set(TG_ERR_INPUT, "%s: %s after %d members (%s)", path,
                          entries ? "corrupt archive" : "not a zip or tar archive", entries, archive_error_string(a));
    archive_read_free(a);
    return rc;
}
