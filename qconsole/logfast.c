/* The dense path of the log search in compiled code: loaded by qconsole/logfast.py.

   Each function is the loop of a Python function of qconsole/logbulk.py, run over
   arrays of positions. Two of them (qc_events, qc_infos) find those positions: the
   matches of the block's patterns logbulk.Shape.events and .infos, as re.finditer
   finds them, the look back to the line's prefix read with a table that the prefix's
   own pattern gave, byte by byte (Shape.table). Those patterns stay the definition
   of a canonical line: tests hold the scans to their matches, on hostile text. The
   other functions read only the digits of a number where a match found one, and line
   breaks. Every array is of 64-bit integers; the outputs are sized by the caller for
   the worst case, or hold the first ``cap`` and say how many there were. */

#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t i64;
typedef const unsigned char *bytes_t;

/* A number's digits (a delivery or message number) as a key, with what the loops
   keep for it. */
typedef struct {
    bytes_t s;
    i64 n;
    i64 a;      /* the first position where the message's chain ends (-1: none) */
    i64 cur;    /* the info line the message is at */
    i64 val;    /* that info line if canonical, else -1 */
    int used;
    int present; /* cur and val are set */
} slot_t;

/* The process's own key of the hash (qc_seed): message and delivery numbers come from
   the log, and with a fixed hash a log's writer could choose thousands that share a
   slot (the table's time would grow as their square). */
static uint64_t seed = 0x9e3779b97f4a7c15ULL;

void qc_seed(uint64_t key)
{
    seed = key;
}

typedef struct {
    slot_t *v;
    i64 mask;
    uint64_t key; /* the seed when the table was made (qc_seed may come meanwhile) */
} table_t;

static int table_init(table_t *t, i64 count)
{
    i64 cap = 16;
    while (cap < 2 * count + 2)
        cap <<= 1;
    t->v = calloc((size_t)cap, sizeof(slot_t));
    t->mask = cap - 1;
    t->key = seed;
    return t->v != NULL;
}

static slot_t *table_get(table_t *t, bytes_t s, i64 n, int add)
{
    uint64_t h = 1469598103934665603ULL ^ t->key;
    for (i64 k = 0; k < n; k++) {
        h ^= s[k];
        h *= 1099511628211ULL;
    }
    /* Every bit of h into the slot's (FNV's low bits depend on low bits only). */
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    for (i64 i = (i64)(h & (uint64_t)t->mask);; i = (i + 1) & t->mask) {
        slot_t *e = &t->v[i];
        if (!e->used) {
            if (!add)
                return NULL;
            e->used = 1;
            e->s = s;
            e->n = n;
            e->a = -1;
            return e;
        }
        if (e->n == n && memcmp(e->s, s, (size_t)n) == 0)
            return e;
    }
}

/* The digits at ``at`` (as \d+ matches them: ASCII only). */
static i64 digits(bytes_t data, i64 size, i64 at)
{
    i64 q = at;
    while (q < size && data[q] >= '0' && data[q] <= '9')
        q++;
    return q - at;
}

/* The start of the line holding ``at``. */
static i64 line_start(bytes_t data, i64 at)
{
    while (at > 0 && data[at - 1] != '\n')
        at--;
    return at;
}

/* line_start for positions asked in order: from the last one asked (``from``, whose
   line starts at ``ls``) on, not back to the line's start each time (a line of a
   megabyte may hold a needle every few bytes). */
static i64 line_start_after(bytes_t data, i64 at, i64 *from, i64 *ls)
{
    if (at < *from)
        return line_start(data, at);
    const unsigned char *nl = memrchr(data + *from, '\n', (size_t)(at - *from));
    if (nl != NULL)
        *ls = nl - data + 1;
    *from = at;
    return *ls;
}

/* Block._find_pairs: the events pattern's matches (start p, end e, and the starts of
   groups 1 "starting", 2 "delivery", 4 message and 5 status, -1 when absent; the
   delivery number, group 3, follows the pattern's 9-byte "delivery " literal).
   Per canonical start line k, in order: its line start, its match, where its message
   is, and its row (line start, status code from ``codes`` by the byte 8 before the
   result's match end, that end), -1 when it has none; the slow and open start lines,
   and the other matches' starts (odd). counts: starts, slow, open, odd.
   Returns -1 when out of memory. */
int qc_pairs(bytes_t data, i64 size, i64 n, const i64 *p, const i64 *e, const i64 *g1,
             const i64 *g2, const i64 *g4, const i64 *g5, i64 w, bytes_t codes,
             i64 *s_ls, i64 *s_match, i64 *s_msg, i64 *row_ls, i64 *row_code, i64 *row_end,
             i64 *slow, i64 *open, i64 *odd, i64 *counts)
{
    table_t t;
    i64 k = 0, ns = 0, no = 0, nodd = 0;
    if (!table_init(&t, n))
        return -1;
    for (i64 i = 0; i < n; i++) {
        i64 at = p[i] + 9;
        i64 len = digits(data, size, at);
        int s = g1[i] >= 0, r = g2[i] >= 0;
        if (g5[i] >= 0 && (s || r)) { /* a result line */
            slot_t *x = table_get(&t, data + at, len, 0);
            if (x != NULL && x->a >= 0) {
                row_ls[x->a] = s ? p[i] - w - 9 : p[i] - w;
                row_code[x->a] = codes[data[e[i] - 8]];
                row_end[x->a] = e[i];
                x->a = -1;
            }
        } else if (s && g4[i] >= 0) { /* a start line */
            table_get(&t, data + at, len, 1)->a = k;
            s_ls[k] = p[i] - w - 9;
            s_match[k] = i;
            s_msg[k] = g4[i];
            row_ls[k++] = -1;
        } else { /* anything else holding "delivery N: ": the slow way */
            slot_t *x = table_get(&t, data + at, len, 0);
            if (x != NULL && x->a >= 0) {
                slow[ns++] = s_ls[x->a];
                x->a = -1;
            }
            odd[nodd++] = p[i];
        }
    }
    for (i64 i = 0; i <= t.mask; i++)
        if (t.v[i].used && t.v[i].a >= 0)
            open[no++] = s_ls[t.v[i].a];
    free(t.v);
    counts[0] = k;
    counts[1] = ns;
    counts[2] = no;
    counts[3] = nodd;
    return 0;
}

/* _pair_rows: for each start line of ``qs`` (sorted), found among the block's ``ns``
   start lines ``s_ls`` (sorted) with their rows and info lines (``info``, -1: none),
   the row if it has one within ``limit`` bytes: (the start line plus ``base``, row,
   code, text start, info line plus ``base`` or ``unknown`` when none or farther than
   ``limit``). Returns how many. */
i64 qc_pair_rows(bytes_t data, i64 size, i64 ns, const i64 *s_ls, const i64 *row_ls,
                 const i64 *row_code, const i64 *row_end, const i64 *info, i64 nq,
                 const i64 *qs, i64 limit, i64 base, i64 unknown, i64 *o_start, i64 *o_row,
                 i64 *o_code, i64 *o_text, i64 *o_info)
{
    i64 n = 0, k = 0;
    for (i64 j = 0; j < nq; j++) {
        while (k < ns && s_ls[k] < qs[j])
            k++;
        if (k == ns || s_ls[k] != qs[j] || row_ls[k] < 0 || row_ls[k] - qs[j] > limit)
            continue;
        i64 end = row_end[k], in = info == NULL ? -1 : info[k];
        o_start[n] = qs[j] + base;
        o_row[n] = row_ls[k];
        o_code[n] = row_code[k];
        o_text[n] = end + (end < size && data[end] == ' ');
        o_info[n++] = in >= 0 && qs[j] - in <= limit ? in + base : unknown;
    }
    return n;
}

/* A message key of an event: its digits in the block at ``at``, or ``len`` bytes at
   ``at`` in ``extra`` (len >= 0), or none (len == -1, extra given). */
typedef struct {
    bytes_t s;
    i64 n;
} msgkey_t;

static msgkey_t key_at(bytes_t data, i64 size, i64 at)
{
    msgkey_t k = {data + at, digits(data, size, at)};
    return k;
}

/* Block._find_messages' loop, the events merged by position (at one position in
   this order of categories: info, end, start, bounce, odd, triple).
   infos: the infos pattern's matches (start; starts of groups 1, 2 its message, 3);
   ends: "end msg M\n" matches (M 8 bytes on); starts and bounces: line starts and
   where their message's digits are; odd lines and triples: line starts, and their
   message in ``extra`` (offset, length; length -1: no message), odd lines with a flag
   (a canonical start or bounce shares the line).
   Outputs: info_at / info_canon per info match; each start's info line (-1: none);
   (pos, info line) pairs; tainted info
   lines; heads (pos, key offset, length, in extra); head_odd keys (in extra); open
   info lines.
   counts: pairs, tainted, heads, head_odd, open. Returns -1 when out of memory. */
int qc_messages(bytes_t data, i64 size, i64 w, bytes_t extra,
                i64 ni, const i64 *ip, const i64 *i1, const i64 *i2, const i64 *i3,
                i64 ne, const i64 *ep,
                i64 ns, const i64 *sls, const i64 *smp,
                i64 nb, const i64 *bls, const i64 *bmp,
                i64 no, const i64 *ols, const i64 *okey, const i64 *olen, const i64 *oshared,
                i64 nt, const i64 *tls, const i64 *tkey, const i64 *tlen,
                i64 *info_at, i64 *info_canon, i64 *s_info, i64 *out_pos, i64 *out_held,
                i64 *tainted,
                i64 *head_pos, i64 *head_key, i64 *head_len, i64 *head_extra,
                i64 *odd_key, i64 *odd_len, i64 *open, i64 *counts)
{
    table_t t;
    i64 np = 0, nta = 0, nh = 0, nho = 0, nop = 0, from = 0, from_ls = 0;
    i64 at[6] = {0, 0, 0, 0, 0, 0};
    const i64 count[6] = {ni, ne, ns, nb, no, nt};
    const i64 *pos[6] = {ip, ep, sls, bls, ols, tls};
    if (!table_init(&t, ni + ne))
        return -1;
    /* Where each message's chain first ends: its first info or end line. */
    for (i64 j = 0; j < ni; j++) {
        msgkey_t k = key_at(data, size, i2[j]);
        slot_t *x = table_get(&t, k.s, k.n, 1);
        if (x->a < 0 || ip[j] < x->a)
            x->a = ip[j];
    }
    for (i64 j = 0; j < ne; j++) {
        msgkey_t k = key_at(data, size, ep[j] + 8);
        slot_t *x = table_get(&t, k.s, k.n, 1);
        if (x->a < 0 || ep[j] < x->a)
            x->a = ep[j];
    }
    for (;;) {
        int c = -1;
        i64 here = 0;
        for (int q = 0; q < 6; q++)
            if (at[q] < count[q] && (c < 0 || pos[q][at[q]] < here)) {
                c = q;
                here = pos[q][at[q]];
            }
        if (c < 0)
            break;
        i64 j = at[c]++;
        if (c == 0) { /* an info line */
            msgkey_t k = key_at(data, size, i2[j]);
            slot_t *x = table_get(&t, k.s, k.n, 0);
            int canon = i1[j] >= 0 && i3[j] >= 0;
            i64 line = canon ? ip[j] - w : line_start_after(data, ip[j], &from, &from_ls);
            info_at[j] = line;
            info_canon[j] = canon;
            x->cur = line;
            x->val = canon ? line : -1;
            x->present = 1;
        } else if (c == 1) { /* the message ends, unless on its info line itself */
            msgkey_t k = key_at(data, size, ep[j] + 8);
            slot_t *x = table_get(&t, k.s, k.n, 0);
            if (x->present && x->cur != line_start_after(data, ep[j], &from, &from_ls))
                x->present = 0;
        } else if (c == 4) { /* a line that is no canonical start or bounce */
            if (olen[j] < 0)
                continue;
            slot_t *x = table_get(&t, extra + okey[j], olen[j], 0);
            i64 held = x != NULL && x->present ? x->val : -1;
            if (held >= 0)
                tainted[nta++] = held;
            if (x == NULL || here < x->a) {
                if (oshared[j]) {
                    odd_key[nho] = okey[j];
                    odd_len[nho++] = olen[j];
                } else {
                    head_pos[nh] = here;
                    head_key[nh] = okey[j];
                    head_len[nh] = olen[j];
                    head_extra[nh++] = 1;
                }
            }
        } else { /* a start, bounce or triple bounce line */
            msgkey_t k;
            int in_extra = c == 5;
            if (c == 2)
                k = key_at(data, size, smp[j]);
            else if (c == 3)
                k = key_at(data, size, bmp[j]);
            else {
                k.s = extra + tkey[j];
                k.n = tlen[j];
            }
            slot_t *x = table_get(&t, k.s, k.n, 0);
            if (c == 2)
                s_info[j] = x != NULL && x->present ? x->val : -1;
            if (x != NULL && x->present) {
                out_pos[np] = here;
                out_held[np++] = x->val;
            } else if (x == NULL || here < x->a) {
                head_pos[nh] = here;
                head_key[nh] = (i64)(k.s - (in_extra ? extra : data));
                head_len[nh] = k.n;
                head_extra[nh++] = in_extra;
            }
        }
    }
    for (i64 i = 0; i <= t.mask; i++)
        if (t.v[i].used && t.v[i].present && t.v[i].val >= 0)
            open[nop++] = t.v[i].val;
    free(t.v);
    counts[0] = np;
    counts[1] = nta;
    counts[2] = nh;
    counts[3] = nho;
    counts[4] = nop;
    return 0;
}

/* logbulk.ENDS' matches ("end msg ", digits, a line break), as re.finditer finds
   them: where each begins, and where its digits begin and end (the first ``cap``).
   Returns how many there are. */
i64 qc_ends(bytes_t data, i64 size, i64 *pos, i64 *key, i64 *key_end, i64 cap)
{
    static const char lit[] = "end msg ";
    const i64 len = sizeof lit - 1;
    i64 n = 0, from = 0;
    while (from < size) {
        bytes_t q = memmem(data + from, (size_t)(size - from), lit, (size_t)len);
        if (q == NULL)
            break;
        i64 at = q - data, d = digits(data, size, at + len);
        if (d > 0 && at + len + d < size && data[at + len + d] == '\n') {
            if (n < cap) {
                pos[n] = at;
                key[n] = at + len;
                key_end[n] = at + len + d;
            }
            n++;
            from = at + len + d + 1;
        } else
            from = at + 1;
    }
    return n;
}

/* Whether the ``w`` bytes at ``at`` are a line prefix of the block's shape: ``head``
   holds 256 flags for each of its positions, the bytes its pattern takes there
   (computed by that pattern: logbulk.Shape.table). */
static int head_at(bytes_t data, i64 at, bytes_t head, i64 w)
{
    for (i64 k = 0; k < w; k++)
        if (!head[k * 256 + data[at + k]])
            return 0;
    return 1;
}

/* The look back (?<=\nHEAD<lit>) of the Shape patterns, at ``end``. */
static int behind(bytes_t data, i64 end, const char *lit, i64 n, bytes_t head, i64 w)
{
    i64 at = end - n - w - 1;
    return at >= 0 && data[at] == '\n' && memcmp(data + end - n, lit, (size_t)n) == 0
           && head_at(data, at + 1, head, w);
}

/* ``lit`` stands at ``at``. */
static int has(bytes_t data, i64 size, i64 at, const char *lit)
{
    i64 n = (i64)strlen(lit);
    return at >= 0 && at + n <= size && memcmp(data + at, lit, (size_t)n) == 0;
}

/* logbulk.Shape.events' matches, as re.finditer finds them (each search from the last
   match's end; nothing a match reads past "delivery" can hold "delivery"): for each,
   its start p and end e, and the starts of groups 1 (a canonical "starting delivery"),
   2 (a canonical "delivery"), 4 (the message) and 5 (the status word), -1 when the
   group takes no part. The first ``cap`` are stored; returns how many there are. */
i64 qc_events(bytes_t data, i64 size, bytes_t head, i64 w, i64 cap, i64 *p, i64 *e,
              i64 *g1, i64 *g2, i64 *g4, i64 *g5)
{
    static const char *const status[] = {"success", "deferral", "failure"};
    i64 n = 0, from = 0;
    while (from < size) {
        bytes_t q = memmem(data + from, (size_t)(size - from), "delivery", 8);
        if (q == NULL)
            break;
        i64 at = q - data, a = at + 8;
        i64 d = a < size && data[a] == ' ' ? digits(data, size, a + 1) : 0;
        if (d == 0 || !has(data, size, a + 1 + d, ": ")) {
            from = at + 1;
            continue;
        }
        i64 x1 = -1, x2 = -1, x4 = -1, x5 = -1, end = a + 1 + d + 2;
        if (behind(data, a, "starting delivery", 17, head, w))
            x1 = a;
        else if (behind(data, a, "delivery", 8, head, w))
            x2 = a;
        if (has(data, size, end, "msg ")) {
            i64 m = end + 4, dm = digits(data, size, m);
            end = m;
            if (dm > 0 && has(data, size, m + dm, " to local ")) {
                x4 = m;
                end = m + dm + 10;
            } else if (dm > 0 && has(data, size, m + dm, " to remote ")) {
                x4 = m;
                end = m + dm + 11;
            }
        } else {
            for (int k = 0; k < 3; k++) {
                i64 len = (i64)strlen(status[k]);
                if (has(data, size, end, status[k]) && has(data, size, end + len, ":")) {
                    x5 = end;
                    end += len + 1;
                    break;
                }
            }
        }
        if (n < cap) {
            p[n] = at;
            e[n] = end;
            g1[n] = x1;
            g2[n] = x2;
            g4[n] = x4;
            g5[n] = x5;
        }
        n++;
        from = end;
    }
    return n;
}

/* logbulk.Shape.infos' matches, as re.finditer finds them (each search from the last
   match's end: a sender may hold "info"): for each, its start p, the start of group 1
   (a canonical "info"), the start and end of group 2 (the message) and of group 3
   (the sender; -1 when it takes no part). The first ``cap`` are stored; returns how
   many there are. */
i64 qc_infos(bytes_t data, i64 size, bytes_t head, i64 w, i64 cap, i64 *p, i64 *g1,
             i64 *g2, i64 *g2e, i64 *g3, i64 *g3e)
{
    i64 n = 0, from = 0;
    i64 open_to = -1; /* no "> " from the last sender's start to here (a line break) */
    while (from < size) {
        bytes_t q = memmem(data + from, (size_t)(size - from), "info", 4);
        if (q == NULL)
            break;
        i64 at = q - data, a = at + 4;
        i64 d = has(data, size, a, " msg ") ? digits(data, size, a + 5) : 0;
        if (d == 0 || !has(data, size, a + 5 + d, ": ")) {
            from = at + 1;
            continue;
        }
        i64 end = a + 5 + d + 2, x3 = -1, x3e = -1;
        i64 nb = has(data, size, end, "bytes ") ? digits(data, size, end + 6) : 0;
        if (nb > 0 && has(data, size, end + 6 + nb, " from <")) {
            i64 s = end + 6 + nb + 7, j = s;
            if (s >= open_to) { /* (the lazy [^\n]*? up to the first "> ") */
                while (j < size && data[j] != '\n' && !(data[j] == '>' && j + 1 < size
                                                        && data[j + 1] == ' '))
                    j++;
                if (j < size && data[j] == '>') {
                    x3 = s;
                    x3e = j;
                    end = j + 2;
                } else
                    open_to = j;
            }
        }
        if (n < cap) {
            p[n] = at;
            g1[n] = behind(data, a, "info", 4, head, w) ? a : -1;
            g2[n] = a + 5;
            g2e[n] = a + 5 + d;
            g3[n] = x3;
            g3e[n] = x3e;
        }
        n++;
        from = end;
    }
    return n;
}

/* bytes.count of a non-empty needle (occurrences that do not overlap), stopping at
   ``most``. */
i64 qc_count(bytes_t text, i64 size, bytes_t needle, i64 len, i64 most)
{
    i64 n = 0, from = 0;
    while (n < most && from + len <= size) {
        bytes_t q = memmem(text + from, (size_t)(size - from), needle, (size_t)len);
        if (q == NULL)
            break;
        n++;
        from = q - text + len;
    }
    return n;
}

/* hits_of_text: the starts of the lines of ``text`` holding ``needle`` (found as
   re.finditer finds a literal: each occurrence after the previous one's end), each
   once, in order; line breaks are read in ``data`` (text is data translated, with
   the same line breaks). The first ``cap`` are stored; returns how many there are. */
i64 qc_hits(bytes_t data, bytes_t text, i64 size, bytes_t needle, i64 len, i64 *out,
            i64 cap)
{
    i64 n = 0, from = 0, last = -1;
    if (len <= 0)
        return -1;
    /* (a needle without a line break: its line's other occurrences are not looked
       for, the search goes on at the next line) */
    int skip = memchr(needle, '\n', (size_t)len) == NULL;
    while (from + len <= size) {
        bytes_t q = memmem(text + from, (size_t)(size - from), needle, (size_t)len);
        if (q == NULL)
            break;
        i64 at = q - text;
        /* A new line unless no line break lies between the last hit and this one. */
        i64 lo = last < 0 ? 0 : last;
        bytes_t nl = memrchr(data + lo, '\n', (size_t)(at - lo));
        if (last < 0 || nl != NULL) {
            if (n < cap)
                out[n] = nl == NULL ? 0 : nl - data + 1;
            n++;
        }
        last = at;
        from = at + len;
        if (skip && from < size) {
            bytes_t end = memchr(data + from, '\n', (size_t)(size - from));
            if (end == NULL)
                break;
            last = end - data;
            from = last + 1;
        }
    }
    return n;
}

/* hidden_needles: for each line (start, end), whether "starting delivery " or
   "info msg " stands in it from ``skip`` bytes past its start (bytes.find's range);
   ``ends`` NULL: each line ends at its line break (or the block's end). */
static int needle_in(bytes_t data, i64 lo, i64 hi)
{
    static const char a[] = "starting delivery ", b[] = "info msg ";
    return lo <= hi
           && (memmem(data + lo, (size_t)(hi - lo), a, sizeof a - 1) != NULL
               || memmem(data + lo, (size_t)(hi - lo), b, sizeof b - 1) != NULL);
}

void qc_needles(bytes_t data, i64 size, i64 n, const i64 *starts, const i64 *ends,
                i64 skip, i64 *out)
{
    for (i64 i = 0; i < n; i++) {
        i64 hi = size;
        if (ends != NULL)
            hi = ends[i] < size ? ends[i] : size;
        else if (starts[i] >= 0 && starts[i] < size) {
            bytes_t q = memchr(data + starts[i], '\n', (size_t)(size - starts[i]));
            hi = q == NULL ? size : q - data;
        }
        out[i] = needle_in(data, starts[i] + skip, hi);
    }
}

/* Found.columns of logscan.py: the rows found in a block, from what was added of them
   (``n`` entries in order: row, status code, start and info line, ``unknown`` when
   that entry does not know it), those whose ``keep`` byte is set: each row once, the
   highest first, with its last code and its last start and info that are known, the
   row global (``base`` added). Returns how many rows, or -1 (no memory). */
typedef struct {
    i64 row;
    i64 at;
} rowref_t;

static int rowref_cmp(const void *a, const void *b)
{
    const rowref_t *x = a, *y = b;
    if (x->row != y->row)
        return x->row < y->row ? 1 : -1;
    return (x->at > y->at) - (x->at < y->at);
}

i64 qc_columns(i64 n, const i64 *rows, const i64 *codes, const i64 *starts,
               const i64 *infos, const unsigned char *keep, i64 base, i64 unknown,
               i64 *o_row, i64 *o_start, i64 *o_info, signed char *o_code)
{
    rowref_t *v = malloc(sizeof(rowref_t) * (size_t)(n > 0 ? n : 1));
    if (v == NULL)
        return -1;
    i64 k = 0, m = 0;
    for (i64 i = 0; i < n; i++)
        if (keep[i]) {
            v[k].row = rows[i];
            v[k++].at = i;
        }
    qsort(v, (size_t)k, sizeof *v, rowref_cmp);
    for (i64 a = 0, b; a < k; a = b) {
        i64 code = 0, start = unknown, info = unknown;
        for (b = a; b < k && v[b].row == v[a].row; b++) {
            i64 i = v[b].at;
            code = codes[i];
            if (starts[i] != unknown)
                start = starts[i];
            if (infos[i] != unknown)
                info = infos[i];
        }
        o_row[m] = base + v[a].row;
        o_start[m] = start;
        o_info[m] = info;
        o_code[m++] = (signed char)code;
    }
    free(v);
    return m;
}

/* Block.result_lines from the block's "delivery N: " matches (qc_pairs' p, e, g2: a
   canonical line with the event there, g5: a status): those of canonical result lines
   among the ``nl`` line starts ``lines`` (sorted), each with its status code (from
   ``codes`` by the byte 8 before the match end) and where its report text starts.
   Returns how many. */
i64 qc_results(bytes_t data, i64 size, i64 n, const i64 *p, const i64 *e, const i64 *g2,
               const i64 *g5, i64 w, bytes_t codes, i64 nl, const i64 *lines, i64 *o_ls,
               i64 *o_code, i64 *o_text)
{
    i64 m = 0, j = 0;
    for (i64 i = 0; i < n && j < nl; i++) {
        if (g2[i] < 0 || g5[i] < 0)
            continue;
        i64 ls = p[i] - w, end = e[i];
        while (j < nl && lines[j] < ls)
            j++;
        if (j < nl && lines[j] == ls) {
            o_ls[m] = ls;
            o_code[m] = codes[data[end - 8]];
            o_text[m++] = end + (end < size && data[end] == ' ');
            j++;
        }
    }
    return m;
}

/* Block._find_rows from the events matches (the result pattern's matches are those
   where a status follows: nothing either reads past "delivery" holds "delivery"): the
   canonical result lines (group 2, a canonical "delivery": line start, status code
   from ``codes`` by the byte 8 before the match end, that end), and the indices of the
   other matches with a status. counts: rows, others. */
void qc_rows(bytes_t data, i64 n, const i64 *p, const i64 *e, const i64 *g2, const i64 *g5,
             i64 w, bytes_t codes, i64 *ls, i64 *code, i64 *after, i64 *odd, i64 *counts)
{
    i64 k = 0, no = 0;
    for (i64 i = 0; i < n; i++) {
        if (g5[i] < 0)
            continue;
        if (g2[i] >= 0) {
            ls[k] = p[i] - w;
            code[k] = codes[data[e[i] - 8]];
            after[k++] = e[i];
        } else
            odd[no++] = i;
    }
    counts[0] = k;
    counts[1] = no;
}

/* logbulk.loud: for each of the ``n`` line starts, whether the line's ``w`` first
   bytes are a prefix of the shape (``head``: see head_at) followed by one of the ``nw``
   words (``words`` end to end, each ending at ``word_end``). */
static int quiet_at(bytes_t data, i64 size, i64 ls, bytes_t head, i64 w, bytes_t words,
                    i64 nw, const i64 *word_end)
{
    if (ls < 0 || ls + w > size || !head_at(data, ls, head, w))
        return 0;
    for (i64 k = 0; k < nw; k++) {
        i64 from = k ? word_end[k - 1] : 0, len = word_end[k] - from;
        if (ls + w + len <= size && memcmp(data + ls + w, words + from, (size_t)len) == 0)
            return 1;
    }
    return 0;
}

void qc_quiet(bytes_t data, i64 size, i64 n, const i64 *lines, bytes_t head, i64 w,
              bytes_t words, i64 nw, const i64 *word_end, i64 *out)
{
    for (i64 i = 0; i < n; i++)
        out[i] = quiet_at(data, size, lines[i], head, w, words, nw, word_end);
}

/* The line from ``at`` to ``end`` as the ``n``-th found, if there is room (the first
   ``cap`` are kept); returns how many are found. */
static i64 store_line(i64 *starts, i64 *ends, i64 cap, i64 n, i64 at, i64 end)
{
    if (n < cap) {
        starts[n] = at;
        ends[n] = end;
    }
    return n + 1;
}

/* _loud_lines: every line of the block but the quiet ones (qc_quiet) that hold no
   hidden needle (qc_needles, from ``w`` + 1 bytes in): their starts and ends (the
   line break or ``size``), the first ``cap`` stored. Returns how many there are. */
i64 qc_loud(bytes_t data, i64 size, bytes_t head, i64 w, bytes_t words, i64 nw,
            const i64 *word_end, i64 *starts, i64 *ends, i64 cap)
{
    i64 n = 0, at = 0;
    while (at < size) {
        bytes_t q = memchr(data + at, '\n', (size_t)(size - at));
        i64 end = q == NULL ? size : q - data;
        if (!quiet_at(data, size, at, head, w, words, nw, word_end)
            || needle_in(data, at + w + 1, end))
            n = store_line(starts, ends, cap, n, at, end);
        at = end + 1;
    }
    return n;
}

/* logbulk.member: for each of the ``n`` sorted ``lines``, whether it is one of the
   ``m`` sorted ``among``. */
void qc_member(i64 n, const i64 *lines, i64 m, const i64 *among, i64 *out)
{
    i64 k = 0;
    for (i64 i = 0; i < n; i++) {
        while (k < m && among[k] < lines[i])
            k++;
        out[i] = k < m && among[k] == lines[i];
    }
}

/* member, both ways: the sorted ``lines`` that are among the sorted ``among`` to
   ``in`` (returns how many), the others to ``out`` (in order). */
i64 qc_split(i64 n, const i64 *lines, i64 m, const i64 *among, i64 *in, i64 *out)
{
    i64 k = 0, a = 0, b = 0;
    for (i64 i = 0; i < n; i++) {
        while (k < m && among[k] < lines[i])
            k++;
        if (k < m && among[k] == lines[i])
            in[a++] = lines[i];
        else
            out[b++] = lines[i];
    }
    return a;
}

/* The ``n`` slices data[starts[i]:ends[i]] to ``out``, each followed by a line break
   (``out`` holds the slices' lengths plus n). Returns the bytes written. */
i64 qc_gather(bytes_t data, i64 n, const i64 *starts, const i64 *ends, char *out)
{
    i64 k = 0;
    for (i64 i = 0; i < n; i++) {
        i64 len = ends[i] - starts[i];
        if (len > 0) {
            memcpy(out + k, data + starts[i], (size_t)len);
            k += len;
        }
        out[k++] = '\n';
    }
    return k;
}

/* sorted(set(a) | set(b)) of two sorted lists. Returns how many. */
i64 qc_union(i64 n, const i64 *a, i64 m, const i64 *b, i64 *out)
{
    i64 i = 0, j = 0, k = 0;
    while (i < n || j < m) {
        i64 v = j == m || (i < n && a[i] <= b[j]) ? a[i] : b[j];
        if (k == 0 || out[k - 1] != v)
            out[k++] = v;
        if (i < n && a[i] == v)
            i++;
        else
            j++;
    }
    return k;
}

/* Block.ends: where the line holding each of the ``n`` positions ``starts`` ends (its
   line break, or ``size``). Returns 0, or -1 for a negative position (not done). */
int qc_line_ends(bytes_t data, i64 size, i64 n, const i64 *starts, i64 *out)
{
    for (i64 i = 0; i < n; i++) {
        i64 s = starts[i];
        if (s < 0)
            return -1;
        const unsigned char *q = s < size ? memchr(data + s, '\n', (size_t)(size - s)) : NULL;
        out[i] = q == NULL ? size : q - data;
    }
    return 0;
}

/* logformat.foreign, read byte by byte (its patterns _SYSLOG and _ISO: each token is
   the longest run, which is how they match; a test holds the two together). */
static int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }
static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
static int digits_at(bytes_t d, i64 p, i64 end, i64 n)
{
    for (i64 k = 0; k < n; k++)
        if (p + k >= end || !is_digit(d[p + k]))
            return 0;
    return 1;
}
static int char_at(bytes_t d, i64 p, i64 end, unsigned char c) { return p < end && d[p] == c; }

/* "HH:MM:SS" at p: the position after it, or -1. */
static i64 clock_at(bytes_t d, i64 p, i64 end)
{
    if (digits_at(d, p, end, 2) && char_at(d, p + 2, end, ':') && digits_at(d, p + 3, end, 2)
        && char_at(d, p + 5, end, ':') && digits_at(d, p + 6, end, 2))
        return p + 8;
    return -1;
}

/* Where a syslog stamp ("Nov 24 10:00:02 ", a fraction of a second or not) at ``p``
   ends, or -1. */
static i64 bsd_end(bytes_t d, i64 p, i64 end)
{
    if (!(p + 3 <= end && d[p] >= 'A' && d[p] <= 'Z' && d[p + 1] >= 'a' && d[p + 1] <= 'z'
          && d[p + 2] >= 'a' && d[p + 2] <= 'z'))
        return -1;
    p += 3;
    if (!char_at(d, p, end, ' '))
        return -1;
    while (char_at(d, p, end, ' '))
        p++;
    if (!digits_at(d, p, end, 1))
        return -1;
    p += 1 + digits_at(d, p + 1, end, 1);
    if (!char_at(d, p, end, ' ') || (p = clock_at(d, p + 1, end)) < 0)
        return -1;
    if (char_at(d, p, end, '.') && digits_at(d, p + 1, end, 1)) /* (short-precise) */
        for (p++; p < end && is_digit(d[p]); p++)
            ;
    return char_at(d, p, end, ' ') ? p + 1 : -1;
}

/* Where a syslog stamp ("Nov 24 10:00:02 ") or an ISO one ("2026-11-24T10:00:02.5+01:00
   ") at the line start ``at`` ends, or -1. */
static i64 stamp_end(bytes_t d, i64 at, i64 end)
{
    i64 p = at;
    if (p + 3 <= end && d[p] >= 'A' && d[p] <= 'Z')
        return bsd_end(d, p, end);
    i64 n = 0;
    while (p + n < end && n < 12 && is_digit(d[p + n]))
        n++;
    if (n >= 9 && n <= 11 && char_at(d, p + n, end, '.') && digits_at(d, p + n + 1, end, 1)) {
        for (p += n + 1; p < end && is_digit(d[p]); p++) /* (journalctl -o short-unix) */
            ;
        return char_at(d, p, end, ' ') ? p + 1 : -1;
    }
    if (!digits_at(d, p, end, 4) || !char_at(d, p + 4, end, '-') || !digits_at(d, p + 5, end, 2)
        || !char_at(d, p + 7, end, '-') || !digits_at(d, p + 8, end, 2)
        || !(char_at(d, p + 10, end, 'T') || char_at(d, p + 10, end, ' '))
        || (p = clock_at(d, p + 11, end)) < 0)
        return -1;
    if (char_at(d, p, end, '.') && digits_at(d, p + 1, end, 1))
        for (p++; p < end && is_digit(d[p]); p++)
            ;
    if (char_at(d, p, end, 'Z'))
        p++;
    else if ((char_at(d, p, end, '+') || char_at(d, p, end, '-')) && digits_at(d, p + 1, end, 2)) {
        i64 q = p + 3 + char_at(d, p + 3, end, ':');
        if (digits_at(d, q, end, 2))
            p = q + 2;
    }
    return char_at(d, p, end, ' ') ? p + 1 : -1;
}

/* ``word`` (of ``n`` bytes) stands in d[from:to]. */
static int holds(bytes_t d, i64 from, i64 to, const char *word, i64 n)
{
    for (i64 p = from; p + n <= to; p++)
        if (d[p] == (unsigned char)word[0] && memcmp(d + p + 1, word + 1, (size_t)n - 1) == 0)
            return 1;
    return 0;
}

/* The program named d[prog:p] is qmail's (logformat._qmails). */
static int qmails(bytes_t d, i64 prog, i64 p)
{
    return (holds(d, prog, p, "qmail", 5) || holds(d, prog, p, "splogger", 8))
        && !(holds(d, prog, p, "smtpd", 5) || holds(d, prog, p, "qmtpd", 5)
             || holds(d, prog, p, "qmqpd", 5) || holds(d, prog, p, "pop3d", 5)
             || holds(d, prog, p, "popup", 5) || holds(d, prog, p, "scanner", 7));
}

/* A socklog line of another program (logformat._SOCKLOG): multilog's stamp, the
   facility and priority, syslog's stamp, the program. */
static int socklog_at(bytes_t d, i64 at, i64 end)
{
    i64 p = at + 26, q;
    if (end - at < 26 || d[at + 25] != ' ')
        return 0;
    for (q = p; q < end && ((d[q] >= 'a' && d[q] <= 'z') || is_digit(d[q])); q++)
        ;
    if (q == p || !char_at(d, q, end, '.'))
        return 0;
    for (p = ++q; q < end && d[q] >= 'a' && d[q] <= 'z'; q++)
        ;
    if (q == p || !char_at(d, q, end, ':') || !char_at(d, q + 1, end, ' '))
        return 0;
    i64 prog = bsd_end(d, q + 2, end);
    if (prog < 0)
        return 0;
    for (p = prog; p < end && !is_ws(d[p]) && d[p] != ':'; p++)
        ;
    if (p == prog || !char_at(d, p, end, ':') || !char_at(d, p + 1, end, ' '))
        return 0;
    return !qmails(d, prog, p);
}

/* The line from ``at`` to ``end`` is another program's syslog line (foreign). */
static int foreign_at(bytes_t d, i64 at, i64 end)
{
    i64 host = stamp_end(d, at, end), p;
    if (host < 0)
        return 0;
    for (p = host; p < end && !is_ws(d[p]); p++)
        ;
    if (p == host || !char_at(d, p, end, ' '))
        return 0;
    i64 prog = ++p;
    for (; p < end && !is_ws(d[p]) && d[p] != ':'; p++)
        ;
    if (p == prog || !char_at(d, p, end, ':') || !char_at(d, p + 1, end, ' '))
        return 0;
    if (qmails(d, prog, p))
        return 0;
    /* qmail-send's "delivery N:" or "triple bounce:" stamped without host and program;
       a host's name alone is no event's word. */
    if (prog - 1 - host == 8 && memcmp(d + host, "delivery", 8) == 0) {
        i64 k = prog;
        while (k < p && is_digit(d[k]))
            k++;
        if (k == p)
            return 0;
    }
    if (prog - 1 - host == 6 && memcmp(d + host, "triple", 6) == 0 && p - prog == 6
        && memcmp(d + prog, "bounce", 6) == 0)
        return 0;
    return 1;
}

/* logbulk.foreign_lines: the starts and ends (line break or ``size``) of the lines of
   another program's syslog, the first ``cap`` stored. Returns how many there are. */
i64 qc_foreign(bytes_t data, i64 size, i64 *starts, i64 *ends, i64 cap)
{
    i64 n = 0, at = 0;
    while (at < size) {
        bytes_t q = memchr(data + at, '\n', (size_t)(size - at));
        i64 end = q == NULL ? size : q - data;
        if (data[at] == '@' ? socklog_at(data, at, end)
            : data[at] == ' ' || data[at] == '\t' || foreign_at(data, at, end))
            n = store_line(starts, ends, cap, n, at, end);
        at = end + 1;
    }
    return n;
}

/* logbulk.without_foreign: the ``n`` lines from ``starts`` to ``ends`` made spaces. */
void qc_blank(unsigned char *data, i64 n, const i64 *starts, const i64 *ends)
{
    for (i64 i = 0; i < n; i++)
        memset(data + starts[i], ' ', (size_t)(ends[i] - starts[i]));
}
