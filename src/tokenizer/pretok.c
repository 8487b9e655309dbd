/*
 * pretok.c — GPT-2's pre-tokenisation, a hand-written scanner with the
 * semantics of the regex
 *   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
 * (alternatives tried in order at each position, each greedy), with Unicode
 * letter/number categories from utf8proc. \s is the JavaScript/ECMAScript
 * white-space set, which is what the reference encoders we test against
 * (js-tiktoken, transformers.js) use. The scanner itself is inline in
 * tok_internal.h (it runs once per word); this file has the character
 * classes. UTF-8 validation is core's (tg_utf8_valid_prefix).
 */
#include <utf8proc.h>

#include "tokenizer/tok_internal.h"

/* Character classes of ASCII (tok_internal.h): 0 white space, 1 letter,
 * 2 digit, 3 other. */
const uint8_t tg_ascii_class[128] = {
    3, 3, 3, 3, 3, 3, 3, 3, 3, 0, 0, 0, 0, 0, 3, 3,
    3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    0, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3,
    2, 2, 2, 2, 2, 2, 2, 2, 2, 2, 3, 3, 3, 3, 3, 3,
    3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3,
    3, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 3, 3, 3, 3, 3,
};

int tg_cp_class(uint32_t cp) {
    switch (cp) {
    case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000: case 0xFEFF:
        return TG_C_WS;
    default:
        break;
    }
    if (cp >= 0x2000 && cp <= 0x200A) return TG_C_WS;
    utf8proc_category_t cat = utf8proc_category((utf8proc_int32_t)cp);
    if (cat >= UTF8PROC_CATEGORY_LU && cat <= UTF8PROC_CATEGORY_LO) return TG_C_L;
    if (cat >= UTF8PROC_CATEGORY_ND && cat <= UTF8PROC_CATEGORY_NO) return TG_C_N;
    return TG_C_O;
}
