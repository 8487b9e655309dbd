/* fuzz_chat_stream.c — the ChatML template and the stop-string streamer.
 * An input is: up to 4 stop strings, each ended by \x01, then messages
 * "ROLE\x02CONTENT\x03"... ; the whole input is also streamed through the
 * stop matcher in chunks whose sizes come from the input's bytes. */
#include "fuzz_util.h"
#include "infer/engine.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *copy = malloc(size + 1);
    if (!copy) return 0;
    memcpy(copy, data, size);
    copy[size] = 0;
    /* stop strings */
    tg_stream_text st;
    memset(&st, 0, sizeof st);
    char held[1024];
    st.buf = held;
    st.cap = sizeof held;
    char *p = copy, *end = copy + size;
    while (st.n_stop < TG_MAX_STOP) {
        char *e = memchr(p, 1, (size_t)(end - p));
        if (!e) break;
        size_t n = (size_t)(e - p);
        if (n > 0 && n <= TG_MAX_STOP_LEN) {
            memcpy(st.stops[st.n_stop], p, n);
            st.stop_len[st.n_stop++] = (int)n;
        }
        p = e + 1;
    }
    /* messages, through the template */
    tg_chat_message msgs[8];
    int nm = 0;
    char *q = p;
    while (nm < 8 && q < end) {
        char *a = memchr(q, 2, (size_t)(end - q));
        if (!a) break;
        char *b = memchr(a + 1, 3, (size_t)(end - a - 1));
        if (!b) break;
        *a = 0;
        *b = 0;
        msgs[nm].role = q;
        msgs[nm].content = a + 1;
        nm++;
        q = b + 1;
    }
    char *out = NULL;
    if (tg_chat_format(msgs, nm, nm & 1, &out) == TG_OK) free(out);
    /* the stream */
    char emit[4096];
    size_t i = 0;
    while (i < size) {
        int chunk = 1 + data[i] % 16;
        if ((size_t)chunk > size - i) chunk = (int)(size - i);
        int n = 0;
        int stop = tg_stream_text_push(&st, (const char *)data + i, chunk, emit, (int)sizeof emit, &n);
        if (n < 0 || n > (int)sizeof emit) abort();
        i += (size_t)chunk;
        if (stop) break;
    }
    (void)tg_stream_text_flush(&st, emit, (int)sizeof emit);
    free(copy);
    tg_error_clear();
    return 0;
}
