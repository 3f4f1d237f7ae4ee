/* PostgreSQL binary COPY rows straight from msgspec-decoded records: the C half of copybin.py.
 *
 * Why C: the load's Python cost per record was dominated by turning decoded values into COPY bytes
 * (asyncpg's per-row tuple walk plus Python encoders for dates, times and jsonb: ~5 us a record). Here
 * a batch is one call: read each record's fields straight from the struct, encode each value by its
 * column's kind, append to one buffer. Whatever this file does not handle (an unusual Python type, a
 * numeric too large for the stack buffer, a time with a zone, base64 text, an ARRAY column's JSON array) is
 * passed to the Python `fallback`, which is the reference encoder; tests check both give PostgreSQL's
 * own bytes.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <datetime.h>
#include <structmember.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

/* The column kinds and their numbers: target_flx/kinds.py's `Kind` has the same names and numbers (a test
 * compares them with the module's KINDS). A kind the switch in enc_value does not name goes to the Python
 * fallback. */
#define KIND_LIST(X)                                                                                     \
    X(INT2, 1) X(INT4, 2) X(INT8, 3) X(NUMERIC, 4) X(FLOAT4, 5) X(FLOAT8, 6) X(BOOL, 7) X(TEXT, 8)          \
    X(DATE, 9) X(TIMESTAMPTZ, 10) X(TIMESTAMP, 11) X(TIME, 12) X(UUID, 13) X(JSONB, 14)                    \
    X(NUMERIC_NOT_NULL, 15) /* numeric whose schema does not allow null: JSON null is invalid */          \
    X(JSON, 16) X(BYTEA, 17) X(BYTEA_BASE16, 18) X(BYTEA_BASE64, 19) X(VARCHAR, 20)                        \
    X(ARRAY, 64) /* + the element's kind: always the Python fallback */

/* Why a value is refused (the reasons this file finds itself): target_flx/reasons.py's `Reason`, exported
 * as REASONS. */
#define REASON_LIST(X) X(OUT_OF_RANGE, 2) X(NOT_A_NUMBER, 3) X(REAL_OUT_OF_RANGE, 4) X(LONE_SURROGATE, 6) \
    X(NOT_A_UUID, 7)

/* Where a plan column's value comes from (copybin.py's FIELD, EXTRACTED, CONST, VERSION). */
#define SOURCE_LIST(X) X(FIELD, 0) X(EXTRACTED, 1) X(CONST, 2) X(VERSION, 3)

#define AS_KIND(name, value) K_##name = value,
#define AS_REASON(name, value) R_##name = value,
#define AS_SOURCE(name, value) S_##name = value,
#define AS_NAME(name, value) {#name, value},
enum Kind { KIND_LIST(AS_KIND) };
enum Reason { REASON_LIST(AS_REASON) };
enum Source { SOURCE_LIST(AS_SOURCE) };

typedef struct {
    const char *name;
    int value;
} Named;

static const Named KIND_NAMES[] = {KIND_LIST(AS_NAME){NULL, 0}};
static const Named REASON_NAMES[] = {REASON_LIST(AS_NAME){NULL, 0}};
static const Named SOURCE_NAMES[] = {SOURCE_LIST(AS_NAME){NULL, 0}};

#define PG_EPOCH_ORDINAL 730120 /* date(2000, 1, 1).toordinal() */
#define MAX_DEC_DIGITS 1000

/* ---------- output buffer ---------- */

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t extra) {
    if (b->len + extra <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : 65536;
    while (cap < b->len + extra) cap *= 2;
    char *data = PyMem_Realloc(b->data, (size_t)cap);
    if (data == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->data = data;
    b->cap = cap;
    return 0;
}

static inline void put16(Buf *b, int v) {
    uint16_t u = (uint16_t)v;
    b->data[b->len++] = (char)(u >> 8);
    b->data[b->len++] = (char)u;
}

static inline void put32(Buf *b, int32_t v) {
    uint32_t u = (uint32_t)v;
    for (int s = 24; s >= 0; s -= 8) b->data[b->len++] = (char)(u >> s);
}

static inline void put64(Buf *b, int64_t v) {
    uint64_t u = (uint64_t)v;
    for (int s = 56; s >= 0; s -= 8) b->data[b->len++] = (char)(u >> s);
}

static int put_bytes(Buf *b, const char *src, Py_ssize_t n, int prefix) {
    if (n + prefix > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "value too large for PostgreSQL (over 1 GB)");
        return -1;
    }
    if (buf_reserve(b, 4 + prefix + n) < 0) return -1;
    put32(b, (int32_t)(n + prefix));
    if (prefix) b->data[b->len++] = 1; /* jsonb version */
    memcpy(b->data + b->len, src, (size_t)n);
    b->len += n;
    return 0;
}

/* ---------- values ---------- */

/* Result of encoding one value: 0 done, 1 hand it to the Python fallback, -1 Python error set,
 * -2 invalid value (its `enum Reason` in *why). */
#define FALLBACK 1
#define INVALID (-2)

static int64_t days_from_civil(int y, int m, int d) {
    static const int before[] = {0, 0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t yy = y - 1;
    int64_t days = yy * 365 + yy / 4 - yy / 100 + yy / 400 + before[m] + d;
    if (m > 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) days += 1;
    return days - PG_EPOCH_ORDINAL;
}

typedef struct {
    PyObject *zone; /* a reference held for the call: the pointer cannot be reused by another zone */
    int64_t offset_us;
} ZoneCache;

#define ZONES 16

typedef struct {
    ZoneCache zones[ZONES];
    int nzones;
    PyTypeObject *fixed_zone_type; /* datetime.timezone: its offset does not depend on the date */
} Ctx;

static int zone_offset(Ctx *ctx, PyObject *dt, PyObject *zone, int64_t *out) {
    for (int i = 0; i < ctx->nzones; i++) {
        if (ctx->zones[i].zone == zone) {
            *out = ctx->zones[i].offset_us;
            return 0;
        }
    }
    PyObject *delta = PyObject_CallMethod(zone, "utcoffset", "O", dt);
    if (delta == NULL) return -1;
    if (delta == Py_None) {
        Py_DECREF(delta);
        *out = 0;
        return 0;
    }
    if (!PyDelta_Check(delta)) {
        Py_DECREF(delta);
        PyErr_SetString(PyExc_TypeError, "utcoffset() did not return a timedelta");
        return -1;
    }
    int64_t off = ((int64_t)PyDateTime_DELTA_GET_DAYS(delta) * 86400 + PyDateTime_DELTA_GET_SECONDS(delta)) *
                      1000000 +
                  PyDateTime_DELTA_GET_MICROSECONDS(delta);
    Py_DECREF(delta);
    if (Py_TYPE(zone) == ctx->fixed_zone_type && ctx->nzones < ZONES) {
        Py_INCREF(zone);
        ctx->zones[ctx->nzones].zone = zone;
        ctx->zones[ctx->nzones].offset_us = off;
        ctx->nzones++;
    }
    *out = off;
    return 0;
}

/* timestamptz and timestamp alike: microseconds since 2000-01-01 UTC (for `timestamp without time zone`,
 * the instant's UTC wall time); a naive value is UTC. */
static int enc_datetime(Ctx *ctx, Buf *b, PyObject *v) {
    if (!PyDateTime_Check(v)) return FALLBACK;
    int64_t days = days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v));
    int64_t us = (days * 86400 + PyDateTime_DATE_GET_HOUR(v) * 3600 + PyDateTime_DATE_GET_MINUTE(v) * 60 +
                  PyDateTime_DATE_GET_SECOND(v)) *
                     1000000 +
                 PyDateTime_DATE_GET_MICROSECOND(v);
    PyObject *zone = PyDateTime_DATE_GET_TZINFO(v);
    if (zone != Py_None) {
        int64_t off;
        if (zone_offset(ctx, v, zone, &off) < 0) return -1;
        us -= off;
    }
    if (buf_reserve(b, 12) < 0) return -1;
    put32(b, 8);
    put64(b, us);
    return 0;
}

static int enc_uuid(Buf *b, PyObject *v, int *why) {
    if (!PyUnicode_Check(v)) return FALLBACK;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) return -1;
    unsigned char out[16];
    int nibbles = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        char c = s[i];
        int h;
        if (c >= '0' && c <= '9') h = c - '0';
        else if (c >= 'a' && c <= 'f') h = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F') h = c - 'A' + 10;
        else if (c == '-' && (nibbles == 8 || nibbles == 12 || nibbles == 16 || nibbles == 20) &&
                 i > 0 && s[i - 1] != '-') continue;
        else { nibbles = -1; break; }
        if (nibbles >= 32) { nibbles = -1; break; }
        if (nibbles % 2 == 0) out[nibbles / 2] = (unsigned char)(h << 4);
        else out[nibbles / 2] |= (unsigned char)h;
        nibbles++;
    }
    if (nibbles != 32) {
        *why = R_NOT_A_UUID;
        return INVALID;
    }
    if (buf_reserve(b, 20) < 0) return -1;
    put32(b, 16);
    memcpy(b->data + b->len, out, 16);
    b->len += 16;
    return 0;
}

/* numeric's special values: no digits, the sign field says which; the display scale is what numeric_send
 * gives for them. */
static int enc_numeric_special(Buf *b, const char *s, Py_ssize_t n) {
    int sign, dscale = 0x20;
    if (n == 3 && memcmp(s, "NaN", 3) == 0) { sign = 0xC000; dscale = 0; }
    else if (n == 8 && memcmp(s, "Infinity", 8) == 0) sign = 0xD000;
    else if (n == 9 && memcmp(s, "-Infinity", 9) == 0) sign = 0xF000;
    else return 0;
    if (buf_reserve(b, 12) < 0) return -1;
    put32(b, 8);
    put16(b, 0);
    put16(b, 0);
    put16(b, sign);
    put16(b, dscale);
    return 1;
}

/* A JSON number's text to numeric's binary form, as PostgreSQL's numeric_in would store it. NaN and
 * ±Infinity (bare tokens in the input, passed on by the codec as that text) are numeric's specials. */
static int enc_numeric_text(Buf *b, const char *s, Py_ssize_t n, int *why) {
    const char *p = s, *end = s + n;
    if (n > 0 && (*s == 'N' || *s == 'I' || (*s == '-' && n > 1 && s[1] == 'I'))) {
        int special = enc_numeric_special(b, s, n);
        if (special != 0) return special < 0 ? -1 : 0;
    }
    int neg = 0;
    if (p < end && *p == '-') { neg = 1; p++; }
    if (p >= end || *p < '0' || *p > '9') {
        *why = R_NOT_A_NUMBER;
        return INVALID;
    }
    unsigned char digits[MAX_DEC_DIGITS + 8];
    int nd = 0, before_point = 0, after_point = 0;
    for (; p < end && *p >= '0' && *p <= '9'; p++) {
        if (nd >= MAX_DEC_DIGITS) return FALLBACK;
        digits[nd++] = (unsigned char)(*p - '0');
        before_point++;
    }
    if (p < end && *p == '.') {
        p++;
        if (p >= end || *p < '0' || *p > '9') { *why = R_NOT_A_NUMBER; return INVALID; }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (nd >= MAX_DEC_DIGITS) return FALLBACK;
            digits[nd++] = (unsigned char)(*p - '0');
            after_point++;
        }
    }
    long exponent = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        int eneg = 0;
        if (p < end && (*p == '+' || *p == '-')) { eneg = *p == '-'; p++; }
        if (p >= end || *p < '0' || *p > '9') { *why = R_NOT_A_NUMBER; return INVALID; }
        for (; p < end && *p >= '0' && *p <= '9'; p++) {
            if (exponent > 100000) return FALLBACK; /* the Python side reports what PostgreSQL would */
            exponent = exponent * 10 + (*p - '0');
        }
        if (eneg) exponent = -exponent;
    }
    if (p != end) { *why = R_NOT_A_NUMBER; return INVALID; }

    long dweight = before_point - 1 + exponent; /* power of ten of digits[0] */
    long dscale = after_point - exponent;
    if (dscale < 0) dscale = 0;
    /* Skip leading zeros (they only move the weight). */
    int first = 0;
    while (first < nd && digits[first] == 0) { first++; dweight--; }
    int count = nd - first;
    while (count > 0 && digits[first + count - 1] == 0) count--;
    if (dscale > 0x3FFF) return FALLBACK;
    int16_t groups[MAX_DEC_DIGITS / 4 + 4];
    int ngroups = 0;
    long weight = 0;
    if (count > 0) {
        /* Group i covers powers 4*(weight-i)+3 .. 4*(weight-i). */
        weight = dweight >= 0 ? dweight / 4 : -((-dweight - 1) / 4 + 1);
        long top = 4 * weight + 3; /* power of the first decimal position of group 0 */
        int acc = 0, pos = 0;
        long power = top;
        long last_power = dweight - (count - 1);
        while (power >= last_power || pos != 0) {
            long idx = dweight - power; /* index into significant digits */
            int d = (idx >= 0 && idx < count) ? digits[first + idx] : 0;
            acc = acc * 10 + d;
            pos++;
            power--;
            if (pos == 4) {
                groups[ngroups++] = (int16_t)acc;
                acc = 0;
                pos = 0;
            }
        }
        while (ngroups > 0 && groups[ngroups - 1] == 0) ngroups--;
        if (weight > 0x7FFF || weight < -0x8000) return FALLBACK;
    } else {
        neg = 0;
    }
    if (buf_reserve(b, 4 + 8 + 2 * ngroups) < 0) return -1;
    put32(b, 8 + 2 * ngroups);
    put16(b, ngroups);
    put16(b, (int)weight);
    put16(b, neg ? 0x4000 : 0x0000);
    put16(b, (int)dscale);
    for (int i = 0; i < ngroups; i++) put16(b, groups[i]);
    return 0;
}

static int is_json_null(const char *s, Py_ssize_t n) { return n == 4 && memcmp(s, "null", 4) == 0; }

static int hex_digit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* base16 text (`\x` or `0x` prefix and an odd digit count allowed) to bytea; anything else (spaces,
 * bad digits) goes to the Python reference, which accepts or names it. */
static int enc_base16(Buf *b, PyObject *v) {
    if (!PyUnicode_Check(v)) return FALLBACK;
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(v, &n);
    if (s == NULL) {
        PyErr_Clear();
        return FALLBACK;
    }
    if (n >= 2 && (s[0] == '\\' || s[0] == '0') && s[1] == 'x') { s += 2; n -= 2; }
    Py_ssize_t out = (n + 1) / 2;
    if (out > INT32_MAX) return FALLBACK;
    if (buf_reserve(b, 4 + out) < 0) return -1;
    Py_ssize_t start = b->len;
    put32(b, (int32_t)out);
    Py_ssize_t i = 0;
    char *dst = b->data + b->len;
    if (n % 2) {
        int lo = hex_digit(s[0]);
        if (lo < 0) { b->len = start; return FALLBACK; }
        *dst++ = (char)lo;
        i = 1;
    }
    for (; i < n; i += 2) {
        int hi = hex_digit(s[i]), lo = hex_digit(s[i + 1]);
        if (hi < 0 || lo < 0) { b->len = start; return FALLBACK; }
        *dst++ = (char)(hi << 4 | lo);
    }
    b->len += out;
    return 0;
}

static int enc_value(Ctx *ctx, Buf *b, int kind, PyObject *v, int *why) {
    switch (kind) {
    case K_INT2: case K_INT4: case K_INT8: {
        if (!PyLong_CheckExact(v)) return FALLBACK;
        int overflow;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) return -1;
        long long lo = kind == K_INT2 ? -32768LL : kind == K_INT4 ? -2147483648LL : INT64_MIN;
        long long hi = kind == K_INT2 ? 32767LL : kind == K_INT4 ? 2147483647LL : INT64_MAX;
        if (overflow || x < lo || x > hi) { *why = R_OUT_OF_RANGE; return INVALID; }
        if (buf_reserve(b, 12) < 0) return -1;
        if (kind == K_INT2) { put32(b, 2); put16(b, (int)x); }
        else if (kind == K_INT4) { put32(b, 4); put32(b, (int32_t)x); }
        else { put32(b, 8); put64(b, x); }
        return 0;
    }
    case K_NUMERIC: case K_NUMERIC_NOT_NULL: {
        if (PyLong_CheckExact(v)) {
            PyObject *text = PyObject_Str(v);
            if (text == NULL) return -1;
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(text, &n);
            int rc = s == NULL ? -1 : enc_numeric_text(b, s, n, why);
            Py_DECREF(text);
            return rc;
        }
        if (!PyObject_CheckBuffer(v) || PyBytes_Check(v)) return FALLBACK;
        Py_buffer view;
        if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE) < 0) return -1;
        int rc;
        if (is_json_null(view.buf, view.len)) {
            if (kind == K_NUMERIC_NOT_NULL) {
                *why = R_NOT_A_NUMBER;
                rc = INVALID;
            } else {
                rc = buf_reserve(b, 4);
                if (rc == 0) put32(b, -1);
            }
        } else {
            rc = enc_numeric_text(b, view.buf, view.len, why);
        }
        PyBuffer_Release(&view);
        return rc;
    }
    case K_FLOAT4: case K_FLOAT8: {
        if (!PyFloat_CheckExact(v)) return FALLBACK;
        double d = PyFloat_AS_DOUBLE(v);
        if (buf_reserve(b, 12) < 0) return -1;
        if (kind == K_FLOAT8) {
            union { double d; int64_t i; } u = {.d = d};
            put32(b, 8);
            put64(b, u.i);
        } else {
            if (isfinite(d) && fabs(d) > FLT_MAX) { *why = R_REAL_OUT_OF_RANGE; return INVALID; }
            union { float f; int32_t i; } u = {.f = (float)d};
            put32(b, 4);
            put32(b, u.i);
        }
        return 0;
    }
    case K_BOOL:
        if (v != Py_True && v != Py_False) return FALLBACK;
        if (buf_reserve(b, 5) < 0) return -1;
        put32(b, 1);
        b->data[b->len++] = v == Py_True;
        return 0;
    case K_TEXT: {
        if (!PyUnicode_Check(v)) return FALLBACK;
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(v, &n);
        if (s == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError)) return -1;
            PyErr_Clear();
            *why = R_LONE_SURROGATE;
            return INVALID;
        }
        return put_bytes(b, s, n, 0);
    }
    case K_DATE:
        if (!PyDate_Check(v) || PyDateTime_Check(v)) return FALLBACK;
        if (buf_reserve(b, 8) < 0) return -1;
        put32(b, 4);
        put32(b, (int32_t)days_from_civil(PyDateTime_GET_YEAR(v), PyDateTime_GET_MONTH(v), PyDateTime_GET_DAY(v)));
        return 0;
    case K_TIMESTAMPTZ: case K_TIMESTAMP:
        return enc_datetime(ctx, b, v);
    case K_TIME: {
        if (!PyTime_Check(v) || PyDateTime_TIME_GET_TZINFO(v) != Py_None) return FALLBACK;
        int64_t us = ((int64_t)PyDateTime_TIME_GET_HOUR(v) * 3600 + PyDateTime_TIME_GET_MINUTE(v) * 60 +
                      PyDateTime_TIME_GET_SECOND(v)) *
                         1000000 +
                     PyDateTime_TIME_GET_MICROSECOND(v);
        if (buf_reserve(b, 12) < 0) return -1;
        put32(b, 8);
        put64(b, us);
        return 0;
    }
    case K_UUID:
        return enc_uuid(b, v, why);
    case K_JSONB: case K_JSON: {
        int version = kind == K_JSONB; /* jsonb's binary form starts with a version byte, json's does not */
        if (PyUnicode_Check(v)) {
            Py_ssize_t n;
            const char *s = PyUnicode_AsUTF8AndSize(v, &n);
            if (s == NULL) return -1;
            return put_bytes(b, s, n, version);
        }
        if (!PyObject_CheckBuffer(v)) return FALLBACK;
        Py_buffer view;
        if (PyObject_GetBuffer(v, &view, PyBUF_SIMPLE) < 0) return -1;
        int rc;
        if (is_json_null(view.buf, view.len)) {
            rc = buf_reserve(b, 4);
            if (rc == 0) put32(b, -1);
        } else {
            rc = put_bytes(b, view.buf, view.len, version);
        }
        PyBuffer_Release(&view);
        return rc;
    }
    case K_BYTEA:
        if (!PyBytes_CheckExact(v)) return FALLBACK;
        return put_bytes(b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), 0);
    case K_BYTEA_BASE16:
        return enc_base16(b, v);
    case K_BYTEA_BASE64:
        return FALLBACK;
    default:
        if (kind > K_ARRAY) return FALLBACK;
        PyErr_Format(PyExc_ValueError, "unknown column kind %d", kind);
        return -1;
    }
}

/* ---------- struct field access ---------- */

/* msgspec Structs keep fields in slots: read them at their offset (what the member descriptor does)
 * when the record's type is the one the offsets came from; else fall back to getattr. */
typedef struct {
    PyObject *name;
    Py_ssize_t offset; /* -1: use getattr */
} Field;

static Py_ssize_t slot_offset(PyTypeObject *type, PyObject *name) {
    PyObject *descr = PyObject_GetAttr((PyObject *)type, name);
    if (descr == NULL) {
        PyErr_Clear();
        return -1;
    }
    Py_ssize_t offset = -1;
    if (Py_IS_TYPE(descr, &PyMemberDescr_Type)) {
        PyMemberDef *def = ((PyMemberDescrObject *)descr)->d_member;
        if (def->type == T_OBJECT_EX || def->type == T_OBJECT) offset = def->offset;
    }
    Py_DECREF(descr);
    return offset;
}

/* A new reference; NULL with an error set. */
static PyObject *read_field(PyObject *obj, Field *f) {
    if (f->offset >= 0) {
        PyObject *v = *(PyObject **)((char *)obj + f->offset);
        if (v == NULL) v = Py_None;
        Py_INCREF(v);
        return v;
    }
    return PyObject_GetAttr(obj, f->name);
}

/* ---------- the batch ---------- */

typedef struct {
    int source, kind;
    PyObject *arg;  /* S_FIELD: attribute name; S_EXTRACTED: mapping; S_CONST: the value */
    PyObject *conv; /* None or a callable applied first */
    Field field;
} Col;

static const char HEADER[] = "PGCOPY\n\377\r\n\0\0\0\0\0\0\0\0\0";

PyDoc_STRVAR(encode_doc,
"encode(messages, plan, fallback) -> bytes | (row, column, why)\n\n"
"A complete binary COPY stream (header, rows, trailer) for the messages. plan holds one\n"
"(source, arg, kind, converter) per column; fallback(column, value) encodes what this module does not.\n"
"An invalid value returns (row index, column index, why) instead: why is the number of its\n"
"reason (see REASONS), or the ValueError the fallback raised for it.");

static PyObject *encode(PyObject *module, PyObject *args) {
    (void)module;
    PyObject *messages, *plan, *fallback;
    if (!PyArg_ParseTuple(args, "O!O!O:encode", &PyList_Type, &messages, &PyTuple_Type, &plan, &fallback))
        return NULL;
    Py_ssize_t ncols = PyTuple_GET_SIZE(plan), nrows = PyList_GET_SIZE(messages);
    if (ncols > 1600) {
        PyErr_SetString(PyExc_ValueError, "too many columns");
        return NULL;
    }
    PyObject *result = NULL;
    Col *cols = PyMem_Calloc((size_t)(ncols ? ncols : 1), sizeof(Col));
    Buf b = {NULL, 0, 0};
    Ctx ctx = {.nzones = 0, .fixed_zone_type = Py_TYPE(PyDateTime_TimeZone_UTC)};
    PyObject *n_record = PyUnicode_InternFromString("record");
    PyObject *n_extracted = PyUnicode_InternFromString("time_extracted");
    PyObject *n_version = PyUnicode_InternFromString("version");
    Field f_record = {n_record, -1}, f_extracted = {n_extracted, -1}, f_version = {n_version, -1};
    PyTypeObject *msg_type = NULL, *rec_type = NULL;
    if (cols == NULL || n_record == NULL || n_extracted == NULL || n_version == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    for (Py_ssize_t c = 0; c < ncols; c++) {
        PyObject *entry = PyTuple_GET_ITEM(plan, c);
        if (!PyArg_ParseTuple(entry, "iOiO", &cols[c].source, &cols[c].arg, &cols[c].kind, &cols[c].conv))
            goto done;
        cols[c].field.name = cols[c].arg;
        cols[c].field.offset = -1;
    }
    if (buf_reserve(&b, 19 + nrows * (2 + 8 * ncols) + 2) < 0) goto done; /* a first guess */
    memcpy(b.data, HEADER, 19);
    b.len = 19;

    /* The list's length is read each time round and each message held while its row is encoded:
     * converters and the fallback are Python code. */
    for (Py_ssize_t r = 0; r < PyList_GET_SIZE(messages); r++) {
        PyObject *m = PyList_GET_ITEM(messages, r);
        Py_INCREF(m);
        if (Py_TYPE(m) != msg_type) { /* first record, or a different struct type: look offsets up again */
            msg_type = Py_TYPE(m);
            f_record.offset = slot_offset(msg_type, n_record);
            f_extracted.offset = slot_offset(msg_type, n_extracted);
            f_version.offset = slot_offset(msg_type, n_version);
        }
        PyObject *rec = read_field(m, &f_record);
        if (rec == NULL) { Py_DECREF(m); goto done; }
        if (Py_TYPE(rec) != rec_type) {
            rec_type = Py_TYPE(rec);
            for (Py_ssize_t c = 0; c < ncols; c++)
                if (cols[c].source == S_FIELD) cols[c].field.offset = slot_offset(rec_type, cols[c].arg);
        }
        if (buf_reserve(&b, 2) < 0) { Py_DECREF(rec); Py_DECREF(m); goto done; }
        put16(&b, (int)ncols);
        for (Py_ssize_t c = 0; c < ncols; c++) {
            Col *col = &cols[c];
            PyObject *v;
            int preencoded = 0;
            switch (col->source) {
            case S_FIELD:
                v = read_field(rec, &col->field);
                break;
            case S_EXTRACTED: {
                PyObject *key = read_field(m, &f_extracted);
                if (key == NULL) { v = NULL; break; }
                v = PyObject_GetItem(col->arg, key);
                Py_DECREF(key);
                preencoded = 1;
                break;
            }
            case S_CONST:
                v = col->arg;
                Py_INCREF(v);
                preencoded = 1;
                break;
            default:
                v = read_field(m, &f_version);
            }
            if (v == NULL) { Py_DECREF(rec); Py_DECREF(m); goto done; }
            if (col->conv != Py_None && v != Py_None) {
                PyObject *converted = PyObject_CallOneArg(col->conv, v);
                Py_DECREF(v);
                if (converted == NULL) { Py_DECREF(rec); Py_DECREF(m); goto done; }
                v = converted;
            }
            int rc;
            int why = 0;
            if (v == Py_None) {
                rc = buf_reserve(&b, 4);
                if (rc == 0) put32(&b, -1);
            } else if (preencoded && PyBytes_CheckExact(v)) {
                rc = put_bytes(&b, PyBytes_AS_STRING(v), PyBytes_GET_SIZE(v), 0);
            } else {
                rc = enc_value(&ctx, &b, col->kind, v, &why);
            }
            if (rc == FALLBACK) {
                PyObject *idx = PyLong_FromSsize_t(c);
                PyObject *encoded = idx ? PyObject_CallFunctionObjArgs(fallback, idx, v, NULL) : NULL;
                Py_XDECREF(idx);
                if (encoded == NULL) {
                    if (PyErr_ExceptionMatches(PyExc_ValueError)) { /* the value is invalid: say where */
                        PyObject *type, *value, *tb;
                        PyErr_Fetch(&type, &value, &tb);
                        PyErr_NormalizeException(&type, &value, &tb);
                        if (value != NULL) result = Py_BuildValue("(nnO)", r, c, value);
                        Py_XDECREF(type); Py_XDECREF(value); Py_XDECREF(tb);
                        Py_DECREF(v); Py_DECREF(rec); Py_DECREF(m);
                        goto done;
                    }
                    rc = -1;
                } else if (encoded == Py_None) {
                    rc = buf_reserve(&b, 4);
                    if (rc == 0) put32(&b, -1);
                    Py_DECREF(encoded);
                } else if (PyBytes_CheckExact(encoded)) {
                    rc = put_bytes(&b, PyBytes_AS_STRING(encoded), PyBytes_GET_SIZE(encoded), 0);
                    Py_DECREF(encoded);
                } else {
                    Py_DECREF(encoded);
                    PyErr_SetString(PyExc_TypeError, "fallback must return bytes or None");
                    rc = -1;
                }
            }
            Py_DECREF(v);
            if (rc == INVALID) {
                result = Py_BuildValue("(nni)", r, c, why);
                Py_DECREF(rec);
                Py_DECREF(m);
                goto done;
            }
            if (rc < 0) { Py_DECREF(rec); Py_DECREF(m); goto done; }
        }
        Py_DECREF(rec);
        Py_DECREF(m);
    }
    if (buf_reserve(&b, 2) < 0) goto done;
    put16(&b, -1);
    result = PyBytes_FromStringAndSize(b.data, b.len);

done:
    for (int i = 0; i < ctx.nzones; i++) Py_DECREF(ctx.zones[i].zone);
    Py_XDECREF(n_record);
    Py_XDECREF(n_extracted);
    Py_XDECREF(n_version);
    PyMem_Free(cols);
    PyMem_Free(b.data);
    return result;
}

static PyMethodDef methods[] = {
    {"encode", encode, METH_VARARGS, encode_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_copybin", "Binary COPY encoding of decoded records (see copybin.py).", -1, methods,
};

/* A module attribute {name: number} from one of the lists above (0 done, -1 error set). */
static int add_names(PyObject *mod, const char *attr, const Named *names) {
    PyObject *dict = PyDict_New();
    if (dict == NULL) return -1;
    for (const Named *n = names; n->name != NULL; n++) {
        PyObject *value = PyLong_FromLong(n->value);
        int rc = value == NULL ? -1 : PyDict_SetItemString(dict, n->name, value);
        Py_XDECREF(value);
        if (rc < 0) {
            Py_DECREF(dict);
            return -1;
        }
    }
    int rc = PyModule_AddObjectRef(mod, attr, dict);
    Py_DECREF(dict);
    return rc;
}

PyMODINIT_FUNC PyInit__copybin(void) {
    PyDateTime_IMPORT;
    if (PyDateTimeAPI == NULL) return NULL;
    PyObject *mod = PyModule_Create(&module);
    if (mod == NULL) return NULL;
    if (add_names(mod, "KINDS", KIND_NAMES) < 0 || add_names(mod, "REASONS", REASON_NAMES) < 0 ||
        add_names(mod, "SOURCES", SOURCE_NAMES) < 0) {
        Py_DECREF(mod);
        return NULL;
    }
    return mod;
}
