/* version.c — the git commit this library was built from, for manifests. */
#include "core/core.h"

#ifndef TG_GIT_COMMIT
#define TG_GIT_COMMIT "unknown"
#endif

const char *tg_git_commit(void) { return TG_GIT_COMMIT; }
