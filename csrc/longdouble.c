/*
 * longdouble.c - C shim for the numeric helpers of Darter that Rust cannot
 * reproduce bit-for-bit on its own.
 *
 * Redis 7.0 does INCRBYFLOAT / HINCRBYFLOAT arithmetic in C `long double`
 * (80-bit x87 extended precision on x86-64) and prints the result with
 * "%.17Lf"; it parses doubles with strtod(). Rust has neither `long double`
 * nor strtod's exact syntax, so those few operations live here and are
 * exposed through a tiny, allocation-free C ABI that src/util.rs wraps
 * safely. (Doubles are printed with "%.17g" in Rust, by src/reply.rs, which
 * is tested against glibc's snprintf.)
 *
 * Every function takes explicit (pointer, length) pairs: inputs need not be
 * NUL-terminated and may contain NUL bytes (which make them invalid numbers,
 * exactly as in Redis where strtod()/strtold() stop at the NUL).
 *
 * The behaviour is that of Redis 7.0 src/util.c (string2ld, string2d,
 * ld2string in LD_STR_HUMAN mode) and src/t_string.c (incrbyfloatCommand).
 * Parsing assumes the "C" locale, which is what a Rust program runs in
 * unless something calls setlocale().
 */

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Same bound as Redis' MAX_LONG_DOUBLE_CHARS (util.h). */
#define MAX_LONG_DOUBLE_CHARS (5 * 1024)

/* Redis string2ld(): 1 if s[0..slen) is exactly one long double, else 0.
 * Rejects: empty or >= 5 KiB input, leading white space, trailing bytes
 * (including an embedded NUL), overflow to +-inf or underflow to 0 (ERANGE),
 * and NaN. Accepts whatever strtold() accepts otherwise: a leading '+',
 * hex floats, "inf"/"infinity" in any case, ".5", "5.". */
static int string2ld(const char *s, size_t slen, long double *dp) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double value;
    char *eptr;

    if (slen == 0 || slen >= sizeof(buf)) return 0;
    memcpy(buf, s, slen);
    buf[slen] = '\0';

    errno = 0;
    value = strtold(buf, &eptr);
    if (isspace((unsigned char)buf[0]) || eptr[0] != '\0' ||
        (size_t)(eptr - buf) != slen ||
        (errno == ERANGE &&
         (value == HUGE_VAL || value == -HUGE_VAL ||
          fpclassify(value) == FP_ZERO)) ||
        errno == EINVAL || isnan(value))
        return 0;

    if (dp) *dp = value;
    return 1;
}

/* Redis ld2string(..., LD_STR_HUMAN) for a value that the caller has already
 * checked is neither NaN nor infinite. Writes at most `len` bytes including
 * the terminating NUL and returns the length, or 0 when it does not fit
 * (Redis then stores an empty string; with len == MAX_LONG_DOUBLE_CHARS that
 * cannot happen for a finite x87 long double, whose "%.17Lf" is < 5000
 * characters). */
static size_t ld2string_human(char *buf, size_t len, long double value) {
    size_t l;
    int n;

    if (len == 0) return 0;
    /* We use 17 digits precision, as Redis does. */
    n = snprintf(buf, len, "%.17Lf", value);
    if (n < 0 || (size_t)n + 1 > len) {
        buf[0] = '\0';
        return 0;
    }
    l = (size_t)n;
    /* Now remove trailing zeroes after the '.' */
    if (strchr(buf, '.') != NULL) {
        char *p = buf + l - 1;
        while (*p == '0') {
            p--;
            l--;
        }
        if (*p == '.') l--;
    }
    /* "-0" (e.g. -0.000000000000000001 rounded away) prints as "0". */
    if (l == 2 && buf[0] == '-' && buf[1] == '0') {
        buf[0] = '0';
        l = 1;
    }
    buf[l] = '\0';
    return l;
}

/* 1 when s[0..len) is a valid long double for Redis (string2ld), else 0.
 * When valid and `finite` is not NULL, *finite is set to 0 for +-inf and to
 * 1 otherwise (HINCRBYFLOAT rejects an infinite increment up front). */
int darter_string2ld_ok(const char *s, size_t len, int *finite) {
    long double v;
    if (!string2ld(s, len, &v)) return 0;
    if (finite) *finite = isinf(v) ? 0 : 1;
    return 1;
}

/* INCRBYFLOAT: parse `cur` and `incr` as Redis does (string2ld), add them in
 * long double, and format the sum like ld2string(LD_STR_HUMAN).
 *
 * Returns the number of bytes written to `out` (not NUL-terminated), or:
 *   -1  `cur` is not a valid float,
 *   -3  `incr` is not a valid float (checked after `cur`, as Redis does),
 *   -2  the sum is NaN or infinite,
 *   -4  the formatted result does not fit in `outcap` bytes (cannot happen
 *       with outcap >= MAX_LONG_DOUBLE_CHARS).
 */
int darter_ld_add(const char *cur, size_t curlen, const char *incr,
                  size_t incrlen, char *out, size_t outcap) {
    char buf[MAX_LONG_DOUBLE_CHARS];
    long double a, b, value;
    size_t l;

    if (!string2ld(cur, curlen, &a)) return -1;
    if (!string2ld(incr, incrlen, &b)) return -3;
    value = a + b;
    if (isnan(value) || isinf(value)) return -2;
    l = ld2string_human(buf, sizeof(buf), value);
    if (l > outcap) return -4;
    memcpy(out, buf, l);
    return (int)l;
}

/* Redis string2d() / getDoubleFromObject(): 1 and *out set when s[0..len)
 * is exactly one double, else 0. Rejects empty input, leading white space,
 * trailing bytes, NaN, and overflow/underflow to +-inf or 0 (ERANGE);
 * accepts "inf", "+inf", "-Infinity", hex floats, "1.", ".1", "+1". */
int darter_string2d(const char *s, size_t len, double *out) {
    char stackbuf[256];
    char *buf = stackbuf;
    char *eptr;
    double value;
    int ok;

    if (len == 0) return 0;
    if (len >= sizeof(stackbuf)) {
        buf = malloc(len + 1);
        if (buf == NULL) return 0;
    }
    memcpy(buf, s, len);
    buf[len] = '\0';

    errno = 0;
    value = strtod(buf, &eptr);
    ok = !(isspace((unsigned char)buf[0]) ||
           (size_t)(eptr - buf) != len ||
           (errno == ERANGE &&
            (value == HUGE_VAL || value == -HUGE_VAL ||
             fpclassify(value) == FP_ZERO)) ||
           isnan(value));
    if (buf != stackbuf) free(buf);
    if (ok) *out = value;
    return ok;
}
