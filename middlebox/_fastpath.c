/*
 * The engine's fast path over a whole capture, in C (tunnelwall.middlebox._fastpath).
 *
 * Why C: offline, most packets of a capture belong to flows the censor has
 * already decided; for each of them the engine only counts (packets,
 * bytes, last seen, per direction). In Python that costs about 2 us a
 * packet, most of it interpreter overhead around a header read and one
 * dict lookup, which put ``classify`` behind nDPI's C reader on long flows
 * (issue 17). This walks the pcap records and does exactly what
 * ``Engine.fast`` does for such packets, on the engine's own flow table
 * and Flow objects, and hands every other record back to Python: a packet
 * of an undecided or unknown flow, SYN/FIN/RST, IP options or fragments,
 * a flow whose server bytes are being counted for a freeze, and the first
 * packet at or after the next idle-expiry deadline. The engine's Python
 * code stays the one definition of the censor; this only skips the
 * interpreter where the outcome is a counter update.
 *
 * ``parse`` does the same for the packets that do take the slow path: an
 * untagged IPv4 (no options, not a fragment) or IPv6 (no extension
 * headers) TCP/UDP frame becomes the same Packet that
 * ``packet.parse_ethernet`` makes, and anything else is left to it.
 *
 * Flow keeps its fields in __slots__; their offsets come from the slot
 * descriptors (PyMemberDescrObject) once, at ``setup``, so reading and
 * writing them is a pointer access. The pure-Python loop in
 * middlebox/offline.py is the fallback when this is not built, and the
 * unit tests check that both give identical flows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>                  /* defines _GNU_SOURCE, which recvmmsg needs */
#include <structmember.h>
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

/* The Flow fields the walk reads and writes, and their slot offsets (found by setup). */
enum {F_DONE, F_PACKETS, F_BYTES, F_LAST_TS, F_C2S, F_S2C, F_BLOCKING, F_FREEZE, F_C2S_DATA, F_S2C_DATA,
      F_STATES, F_FINS, F_CLOSED, F_STREAMS, F_N};
static const char *flow_fields[F_N] = {"done", "packets", "bytes", "last_ts", "c2s_packets", "s2c_packets",
                                       "blocking", "freeze_at", "c2s_data", "s2c_data", "states", "fins",
                                       "closed", "streams"};
static Py_ssize_t f_off[F_N];
static int flow_ready = 0;

static int slot_offset(PyObject *cls, const char *name, Py_ssize_t *out)
{
    PyObject *d = PyObject_GetAttrString(cls, name);
    if (d == NULL)
        return -1;
    if (!Py_IS_TYPE(d, &PyMemberDescr_Type) || ((PyMemberDescrObject *)d)->d_member->type != T_OBJECT_EX) {
        PyErr_Format(PyExc_TypeError, "_fastpath: %s is not an object slot of the flow class", name);
        Py_DECREF(d);
        return -1;
    }
    *out = ((PyMemberDescrObject *)d)->d_member->offset;
    Py_DECREF(d);
    return 0;
}

/* The offsets of *n* object slots of the class *cls*, by name; -1 on error. */
static int slot_offsets(PyObject *cls, const char **names, int n, Py_ssize_t *out)
{
    if (!PyType_Check(cls)) {
        PyErr_SetString(PyExc_TypeError, "_fastpath: expected a class");
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (slot_offset(cls, names[i], &out[i]))
            return -1;
    return 0;
}

static PyObject *setup(PyObject *self, PyObject *cls)
{
    flow_ready = 0;
    if (slot_offsets(cls, flow_fields, F_N, f_off))
        return NULL;
    flow_ready = 1;
    Py_RETURN_NONE;
}

/* An int slot's value into *out; -1 on error (an unset or non-int slot). */
static int int_of(PyObject *flow, Py_ssize_t off, long *out)
{
    PyObject *v = SLOT(flow, off);
    if (v == NULL || !PyLong_Check(v)) {
        PyErr_SetString(PyExc_TypeError, "_fastpath: a flow counter is not an int");
        return -1;
    }
    *out = PyLong_AsLong(v);
    return (*out == -1 && PyErr_Occurred()) ? -1 : 0;
}

/* Replace an object slot's value (the reference to *value* moves into the slot). */
static inline void set_slot(PyObject *o, Py_ssize_t off, PyObject *value)
{
    PyObject *old = SLOT(o, off);
    SLOT(o, off) = value;
    Py_XDECREF(old);
}

/* Replace an int slot's value; -1 on error. */
static int set_int(PyObject *o, Py_ssize_t off, long value)
{
    PyObject *v = PyLong_FromLong(value);
    if (v == NULL)
        return -1;
    set_slot(o, off, v);
    return 0;
}

/* slot += by, for an int slot; -1 on error. */
static int add_to(PyObject *flow, Py_ssize_t off, long by)
{
    long value;
    return int_of(flow, off, &value) || set_int(flow, off, value + by) ? -1 : 0;
}

static inline unsigned u16be(const unsigned char *p) { return (unsigned)p[0] << 8 | p[1]; }

static inline uint32_t u32(const unsigned char *p, int big)
{
    return big ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
               : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/* ---- watched flows: classifiers that only count, in C ---------------------------------- */

/*
 * Once a flow is identified, one classifier often goes on watching it alone
 * for its budget of data packets: tls-in-tls on a TLS flow (the packet
 * bursts after the outer handshake, middlebox/classifiers/tlsintls.py), OpenVPN's
 * opcode test on a flow the entropy test flagged (its header bytes,
 * classifiers/openvpn.py). In a real tool's capture those segments were
 * two thirds of what still reached Python. For each of them the engine only
 * appends the bytes to the direction's reassembly and the classifier only
 * counts, so the walk does both here when the segment is the one the
 * stream expects (nothing waits out of order, no resync) and the count
 * reaches no outcome: no judgement, no giving up, no detection, no budget
 * spent. Any other segment goes to Python untouched, so the classifiers'
 * Python code stays the one definition; the unit tests check that both
 * give identical flows.
 */
enum {S_NEXT, S_DATA, S_WAITING, S_LIMIT, S_RESYNC, S_N};
static const char *stream_fields[S_N] = {"next", "data", "waiting", "limit", "resync"};
static Py_ssize_t s_off[S_N];
enum {T_START, T_SEEN, T_BURSTS, T_PACKETS, T_DIRS, T_FIRSTS, T_N};
static const char *tls_fields[T_N] = {"start", "seen", "bursts", "packets", "dirs", "firsts"};
static Py_ssize_t t_off[T_N];
enum {O_FIRST_C2S, O_FIRST_S2C, O_VALUES, O_RECORDS, O_RESET_RECURRED, O_C2S_SIZES, O_ALIVE, O_N};
static const char *ovpn_fields[O_N] = {"first_c2s", "first_s2c", "values", "records", "reset_recurred", "c2s_sizes",
                                       "opcodes_alive"};
static Py_ssize_t o_off[O_N];
static int watch_ready = 0;

static PyObject *setup_watch(PyObject *self, PyObject *args)
{
    PyObject *stream_cls, *tls_cls, *ovpn_cls;
    if (!PyArg_ParseTuple(args, "OOO", &stream_cls, &tls_cls, &ovpn_cls))
        return NULL;
    watch_ready = 0;
    if (slot_offsets(stream_cls, stream_fields, S_N, s_off) || slot_offsets(tls_cls, tls_fields, T_N, t_off)
            || slot_offsets(ovpn_cls, ovpn_fields, O_N, o_off))
        return NULL;
    watch_ready = 1;
    Py_RETURN_NONE;
}

/*
 * The engine's watchers (Engine.watch: tls-in-tls, then OpenVPN), each as
 * (classifier, data budget, packet budget, four constants of its own) or
 * None. Kind WATCH_NONE holds the plain-ACK budgets (Engine.quiet_acks)
 * and no classifier, so a flow's budgets are always watchers[kind].
 */
enum {WATCH_NONE, WATCH_TLS, WATCH_OVPN, WATCH_KINDS};
enum {TLS_MAX_STARTS, TLS_FOURTH_CAP, TLS_UNUSED_1, TLS_UNUSED_2};                 /* TLSinTLS.walk_constants */
enum {OVPN_WINDOW, OVPN_MIN_RECORDS, OVPN_MIN_DISTINCT, OVPN_MAX_DISTINCT};         /* OpenVPN.walk_constants */

typedef struct {
    PyObject *clf;                          /* the classifier, the key of its state in flow.states; NULL: none */
    long data, packets;                     /* Engine._spent with only it left */
    long c[4];
} Watcher;

static int watchers_of(PyObject *spec, long quiet_data, long quiet_packets, Watcher *w)
{
    memset(w, 0, sizeof(Watcher) * WATCH_KINDS);
    w[WATCH_NONE].data = quiet_data, w[WATCH_NONE].packets = quiet_packets;
    if (spec == NULL || spec == Py_None)
        return 0;
    if (!watch_ready) {
        PyErr_SetString(PyExc_RuntimeError, "_fastpath.setup_watch(Stream, tls state, openvpn state) was not called");
        return -1;
    }
    PyObject *each[WATCH_KINDS] = {NULL, Py_None, Py_None};
    if (!PyArg_ParseTuple(spec, "OO", &each[WATCH_TLS], &each[WATCH_OVPN]))
        return -1;
    for (int kind = WATCH_TLS; kind < WATCH_KINDS; kind++)
        if (each[kind] != Py_None && !PyArg_ParseTuple(each[kind], "Ollllll", &w[kind].clf, &w[kind].data,
                                                        &w[kind].packets, &w[kind].c[0], &w[kind].c[1],
                                                        &w[kind].c[2], &w[kind].c[3]))
            return -1;
    return 0;
}

/* The kind of watcher that is the only classifier left on the flow (WATCH_NONE: none), and its state (borrowed). */
static int watched(PyObject *states, const Watcher *w, PyObject **state)
{
    Py_ssize_t i = 0;
    PyObject *k;
    if (PyDict_GET_SIZE(states) == 1 && PyDict_Next(states, &i, &k, state))
        for (int kind = WATCH_TLS; kind < WATCH_KINDS; kind++)
            if (w[kind].clf != NULL && k == w[kind].clf)
                return kind;
    *state = NULL;
    return WATCH_NONE;
}

static inline int is_int_list(PyObject *o, Py_ssize_t max)
{
    if (o == NULL || !PyList_CheckExact(o) || PyList_GET_SIZE(o) > max)
        return 0;
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(o); i++)
        if (!PyLong_CheckExact(PyList_GET_ITEM(o, i)))
            return 0;
    return 1;
}

static inline long min_long(long a, long b) { return a < b ? a : b; }

/* Append *value* to a list, or add it to a set, as an int; -1 on error. */
static int add_long(PyObject *container, long value)
{
    PyObject *v = PyLong_FromLong(value);
    if (v == NULL)
        return -1;
    int failed = PyList_CheckExact(container) ? PyList_Append(container, v) : PySet_Add(container, v);
    Py_DECREF(v);
    return failed;
}

/* Replace item *i* of a list with an int; -1 on error. */
static int set_long_item(PyObject *list, Py_ssize_t i, long value)
{
    PyObject *v = PyLong_FromLong(value);
    return v == NULL ? -1 : PyList_SetItem(list, i, v);
}

/*
 * Stream.add for a segment at *seq*, when it is the simple case: the
 * segment is the next one expected and nothing waits (1, with the bytes
 * it adds in *add*: all of it, what fits, or 0 on a full stream), or not
 * (0: Python). *stream* is the direction's Stream (borrowed), *old* and
 * *limit* its length and its limit.
 */
typedef struct {
    PyObject *stream;
    unsigned long expected;
    Py_ssize_t old, limit, add;
} InOrder;

static int in_order(PyObject *flow, int direction, uint32_t seq, Py_ssize_t plen, InOrder *io)
{
    PyObject *streams = SLOT(flow, f_off[F_STREAMS]);
    if (streams == NULL || !PyTuple_Check(streams) || PyTuple_GET_SIZE(streams) != 2)
        return 0;
    PyObject *stream = PyTuple_GET_ITEM(streams, direction);
    PyObject *next = SLOT(stream, s_off[S_NEXT]), *data = SLOT(stream, s_off[S_DATA]);
    PyObject *waiting = SLOT(stream, s_off[S_WAITING]), *limit_o = SLOT(stream, s_off[S_LIMIT]);
    if (next == NULL || !PyLong_CheckExact(next) || data == NULL || !PyBytes_CheckExact(data) || waiting == NULL
            || !PyDict_Check(waiting) || PyDict_GET_SIZE(waiting) != 0 || SLOT(stream, s_off[S_RESYNC]) != Py_False
            || limit_o == NULL || !PyLong_CheckExact(limit_o))
        return 0;                                            /* a gap, a resync, a fresh stream: Python */
    io->stream = stream;
    io->limit = PyLong_AsSsize_t(limit_o);
    io->expected = PyLong_AsUnsignedLong(next);
    io->old = PyBytes_GET_SIZE(data);
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (io->old >= io->limit) {
        io->add = 0;                                         /* full: Stream.add changes nothing */
        return 1;
    }
    if (io->expected != seq)
        return 0;
    io->add = plen < io->limit - io->old ? plen : io->limit - io->old;
    return 1;
}

/* The stream with the segment delivered (Stream._deliver); -1 on error. */
static int deliver(const InOrder *io, PyObject *joined, Py_ssize_t plen)
{
    if (io->add == 0)
        return 0;
    PyObject *advanced = PyLong_FromUnsignedLong((io->expected + (unsigned long)plen) & 0xFFFFFFFFUL);
    if (advanced == NULL)
        return -1;
    set_slot(io->stream, s_off[S_DATA], Py_NewRef(joined));
    set_slot(io->stream, s_off[S_NEXT], advanced);
    return 0;
}

/* The stream's bytes with *add* bytes of the payload appended (new reference). */
static PyObject *joined_bytes(const InOrder *io, const unsigned char *payload)
{
    PyObject *data = SLOT(io->stream, s_off[S_DATA]);
    PyObject *joined = PyBytes_FromStringAndSize(NULL, io->old + io->add);
    if (joined == NULL)
        return NULL;
    memcpy(PyBytes_AS_STRING(joined), PyBytes_AS_STRING(data), io->old);
    memcpy(PyBytes_AS_STRING(joined) + io->old, payload, io->add);
    return joined;
}

/*
 * TLSinTLS.update on a segment after the outer handshake's start in its
 * direction that makes nothing to judge: it only moves the direction's
 * count (the server's bytes before the client's Finished, a retransmitted
 * or empty delivery), grows the current burst, or opens a burst that ends
 * no window still judged. 1 taken; 0 Python (a handshake record to parse,
 * a window's fourth burst below its cap, the last window's end, a stream
 * that fills); -1 error.
 */
static int take_tls(int direction, PyObject *st, const InOrder *io, const unsigned char *payload, Py_ssize_t plen,
                    const long *c)
{
    if (io->old + plen >= io->limit)
        return 0;                                            /* it fills the stream: Python */
    PyObject *start_l = SLOT(st, t_off[T_START]), *seen_l = SLOT(st, t_off[T_SEEN]);
    PyObject *bursts = SLOT(st, t_off[T_BURSTS]), *packets = SLOT(st, t_off[T_PACKETS]);
    PyObject *dirs = SLOT(st, t_off[T_DIRS]), *firsts = SLOT(st, t_off[T_FIRSTS]);
    if (!is_int_list(start_l, 2) || PyList_GET_SIZE(start_l) != 2 || !is_int_list(seen_l, 2)
            || PyList_GET_SIZE(seen_l) != 2 || bursts == NULL || !PyList_CheckExact(bursts) || packets == NULL
            || !PyList_CheckExact(packets) || dirs == NULL || !PyList_CheckExact(dirs) || firsts == NULL
            || !PyList_CheckExact(firsts))
        return 0;
    Py_ssize_t n = PyList_GET_SIZE(bursts);
    if (PyList_GET_SIZE(packets) != n || PyList_GET_SIZE(dirs) != n || PyList_GET_SIZE(firsts) != n)
        return 0;
    long start_c2s = PyLong_AsLong(PyList_GET_ITEM(start_l, 0));
    long start = PyLong_AsLong(PyList_GET_ITEM(start_l, direction));
    long seen = PyLong_AsLong(PyList_GET_ITEM(seen_l, direction));
    long dir = -1, burst = 0, npackets = 0;
    if (n > 0) {
        PyObject *dir_o = PyList_GET_ITEM(dirs, n - 1), *burst_o = PyList_GET_ITEM(bursts, n - 1);
        PyObject *packets_o = PyList_GET_ITEM(packets, n - 1);
        if (!PyLong_CheckExact(dir_o) || !PyLong_CheckExact(burst_o) || !PyLong_CheckExact(packets_o))
            return 0;
        dir = PyLong_AsLong(dir_o), burst = PyLong_AsLong(burst_o), npackets = PyLong_AsLong(packets_o);
    }
    if (PyErr_Occurred()) {
        PyErr_Clear();
        return 0;
    }
    if (start < 0)
        return 0;                                            /* the outer handshake's records: Python parses */
    long length = (long)(io->old + io->add);
    long size = length - (seen > start ? seen : start);
    /* 0: only the count moves; 1: the burst grows; 2: a burst opens (TLSinTLS._packet) */
    int what = 0;
    if (start_c2s >= 0 && size > 0) {
        if (n == 0)
            what = direction == 0 ? 2 : 0;                   /* the sequence starts with the client */
        else
            what = dir == direction ? 1 : 2;
    }
    if (what == 1 && direction == 1 && n - 1 >= 3 && (n - 4) / 2 < c[TLS_MAX_STARTS] && burst < c[TLS_FOURTH_CAP])
        return 0;                                            /* it grows a fourth burst still judged */
    if (what == 2 && direction == 1 && n >= 3 && (n - 3) / 2 < c[TLS_MAX_STARTS])
        return 0;                                            /* it opens a fourth burst to judge */
    if (what == 2 && direction == 0 && n >= 2 * c[TLS_MAX_STARTS] + 2)
        return 0;                                            /* the last window ended: Python gives up */
    /* Commit: the stream, then the watcher's state. */
    PyObject *joined = joined_bytes(io, payload);
    if (joined == NULL)
        return -1;
    int failed = deliver(io, joined, plen);
    Py_DECREF(joined);
    if (failed || set_long_item(seen_l, direction, length))
        return -1;
    if (what == 1)
        return set_long_item(bursts, n - 1, burst + size) || set_long_item(packets, n - 1, npackets + 1) ? -1 : 1;
    if (what == 2)                                           /* firsts: its first packet (a third burst's is judged) */
        return add_long(bursts, size) || add_long(packets, 1) || add_long(dirs, direction) || add_long(firsts, size)
            ? -1 : 1;
    return 1;
}

/* OpenVPN's opcode test (OpenVPN.update with the ACK filter off) on a TCP segment: 1 taken, 0 Python, -1 error. */
static int take_ovpn(int direction, PyObject *st, const InOrder *io, const unsigned char *payload, Py_ssize_t plen,
                     const long *c)
{
    PyObject *first_c2s = SLOT(st, o_off[O_FIRST_C2S]), *first_s2c = SLOT(st, o_off[O_FIRST_S2C]);
    PyObject *values = SLOT(st, o_off[O_VALUES]), *records_o = SLOT(st, o_off[O_RECORDS]);
    PyObject *sizes = SLOT(st, o_off[O_C2S_SIZES]);
    if (first_c2s == NULL || first_s2c == NULL || first_c2s == Py_None || first_s2c == Py_None
            || !PyLong_CheckExact(first_c2s) || !PyLong_CheckExact(first_s2c)
            || values == NULL || !PySet_CheckExact(values) || records_o == NULL || !PyLong_CheckExact(records_o)
            || sizes == NULL || !PyList_CheckExact(sizes) || SLOT(st, o_off[O_ALIVE]) != Py_True
            || SLOT(st, o_off[O_RESET_RECURRED]) != Py_False)
        return 0;                                            /* a first packet, or the test has ended */
    long c2s_reset = PyLong_AsLong(first_c2s), s2c_reset = PyLong_AsLong(first_s2c);
    long records = PyLong_AsLong(records_o);
    if (PyErr_Occurred())
        return -1;
    /* header_bytes(payload, tcp=True): the header byte of each length-prefixed record. */
    unsigned char found[256];
    int nfound = 0;
    Py_ssize_t pos = 0;
    /* pos grows by 2 + length >= 3 per record (length < 1 breaks out). */
    while (pos + 3 <= plen) {
        long length = (long)u16be(payload + pos);
        if (length < 1 || pos + 2 + length > plen) {
            if (length >= 1 && nfound == 0)
                found[nfound++] = payload[pos + 2];          /* a record continuing in the next segment */
            break;
        }
        if (nfound == (int)sizeof found)
            return 0;                                        /* more records than this counts: Python */
        found[nfound++] = payload[pos + 2];
        pos += 2 + length;
    }
    if (nfound == 0)
        return 0;                                            /* not OpenVPN framing: the test ends */
    Py_ssize_t distinct = PySet_GET_SIZE(values);
    unsigned char fresh[256];
    int nfresh = 0;
    for (int i = 0; i < nfound; i++) {
        if (found[i] == c2s_reset || found[i] == s2c_reset)
            return 0;                                        /* a reset value recurs: the test ends */
        PyObject *v = PyLong_FromLong(found[i]);
        if (v == NULL)
            return -1;
        int in = PySet_Contains(values, v);
        Py_DECREF(v);
        if (in < 0)
            return -1;
        int again = 0;
        for (int j = 0; j < nfresh; j++)
            again |= fresh[j] == found[i];
        if (!in && !again)
            fresh[nfresh++] = found[i];
    }
    distinct += nfresh;
    records += nfound;
    if (distinct > c[OVPN_MAX_DISTINCT] || records >= c[OVPN_WINDOW]
            || (records >= c[OVPN_MIN_RECORDS] && c[OVPN_MIN_DISTINCT] <= distinct))
        return 0;                                            /* an outcome: DONE or a detection */
    /* Commit: the stream, the client's sizes, the count and the values seen. */
    PyObject *joined = joined_bytes(io, payload);
    if (joined == NULL)
        return -1;
    int failed = deliver(io, joined, plen);
    Py_DECREF(joined);
    if (failed)
        return -1;
    if (direction == 0 && add_long(sizes, (long)plen))
        return -1;
    for (int i = 0; i < nfresh; i++)
        if (add_long(values, fresh[i]))
            return -1;
    return set_int(st, o_off[O_RECORDS], records) ? -1 : 1;
}

/*
 * A data segment of a watched flow: 1 taken (the direction's stream, the
 * watcher's state and the flow's data count updated, as Engine._inspect
 * and the classifier's update would), 0 left to Python (nothing changed),
 * -1 error.
 */
static int take_watched(PyObject *flow, int direction, int kind, PyObject *st, const unsigned char *payload,
                        Py_ssize_t plen, uint32_t seq, const Watcher *w)
{
    InOrder io;
    if (!in_order(flow, direction, seq, plen, &io))
        return 0;
    int took = kind == WATCH_TLS ? take_tls(direction, st, &io, payload, plen, w->c)
                                 : take_ovpn(direction, st, &io, payload, plen, w->c);
    if (took <= 0)
        return took;
    return add_to(flow, direction == 0 ? f_off[F_C2S_DATA] : f_off[F_S2C_DATA], 1) ? -1 : 1;
}

/*
 * walk(flows, data, offset, big_endian, tick, expiry_at, quiet_data=0, quiet_packets=0, limit=max,
 *      watch=None)
 *     -> (offset, packets, blocked, fast)
 *
 * Walks pcap records (Ethernet link type) from *offset*, taking every
 * packet Engine.fast would take without side effects beyond counting.
 * Two more kinds of TCP segment are only counters to the engine's slow
 * path too, and are taken here:
 *
 * - a FIN or RST (no SYN) of a decided flow: counted, then the flow's
 *   lifecycle (Engine._lifecycle: a RST closes it, FINs from both ends do);
 * - a segment with no payload and no SYN/FIN/RST (a plain ACK) of an
 *   undecided flow, when *quiet_data* > 0 (Engine.quiet_acks: the TCP
 *   model accepts every segment, so no check can reject it), the flow still
 *   has classifiers, fewer than *quiet_data* data packets and, counting
 *   this one, fewer than *quiet_packets* packets (so Engine._spent would
 *   not end its inspection). Such a segment reaches no classifier;
 * - with *watch* (Engine.watch), a data segment of a flow only one of the
 *   watchers above still watches, when the flow has sent data in this
 *   direction before and the watcher would reach no outcome on it
 *   (take_watched); the budgets are then the watcher's.
 * Returns the offset of the first record it leaves to Python (or of the
 * end / a truncated last record), how many packets it took, and how many
 * of those belonged to blocked flows, and whether Engine.fast takes the
 * record it stopped at (1: an expiry deadline, a freeze count, or the
 * first record at or past *limit*, where the caller lets go of the pages
 * read) or it needs the slow path (0), so Python does not look at it twice.
 */
static PyObject *walk(PyObject *self, PyObject *args)
{
    PyObject *flows, *data;
    Py_ssize_t offset;
    int big;
    double tick, expiry_at;
    long quiet_data = 0, quiet_packets = 0;
    Py_ssize_t limit = PY_SSIZE_T_MAX;
    PyObject *watch_spec = NULL;
    Watcher watchers[WATCH_KINDS];
    if (!PyArg_ParseTuple(args, "O!Onpdd|llnO", &PyDict_Type, &flows, &data, &offset, &big, &tick, &expiry_at,
                          &quiet_data, &quiet_packets, &limit, &watch_spec))
        return NULL;
    if (!flow_ready) {
        PyErr_SetString(PyExc_RuntimeError, "_fastpath.setup(Flow) was not called");
        return NULL;
    }
    if (watchers_of(watch_spec, quiet_data, quiet_packets, watchers))
        return NULL;
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    long taken = 0, blocked = 0;
    int failed = 0, python_fast = 0;   /* 1: Engine.fast takes the record (expiry or freeze), 0: the slow path */
    unsigned char key[37];
    /* offset grows by 16 + caplen per record (offset = stop below), or the loop breaks. */
    while (offset + 16 <= end) {
        const unsigned char *h = buf + offset;
        uint32_t caplen = u32(h + 8, big);
        Py_ssize_t s = offset + 16, stop = s + (Py_ssize_t)caplen;
        if (stop > end)
            break;                                           /* truncated: Python ends there */
        double ts = (double)u32(h, big) + (double)u32(h + 4, big) * tick;
        if (ts >= expiry_at || offset >= limit) {
            python_fast = 1;                                 /* Python expires idle flows first */
            break;
        }
        const unsigned char *p = buf + s;
        Py_ssize_t len = stop - s, l4, keylen;
        long size;
        int proto, flags = 0;
        Py_ssize_t ip_end;                                   /* where the parser ends the IP packet */
        if (len >= 38 && p[12] == 0x08 && p[13] == 0x00) {
            if (p[14] != 0x45 || (p[20] & 0x3F) || p[21])
                break;                                       /* options or a fragment */
            key[0] = p[23];
            memcpy(key + 1, p + 26, 12);
            keylen = 13;
            size = (long)u16be(p + 16) - 20;
            ip_end = 14 + size + 20 < len ? 14 + size + 20 : len;
            proto = p[23];
            l4 = 34;
        } else if (len >= 58 && p[12] == 0x86 && p[13] == 0xdd) {
            if (p[20] != 6 && p[20] != 17)
                break;                                       /* extension headers */
            key[0] = p[20];
            memcpy(key + 1, p + 22, 36);
            keylen = 37;
            size = u16be(p + 18);
            ip_end = size == 0 ? len : (54 + size < len ? 54 + size : len);
            proto = p[20];
            l4 = 54;
        } else {
            break;
        }
        Py_ssize_t captured = 0, payload_at = 0;             /* the TCP payload as the slow path sees it */
        int whole_header = 0;                                /* one the parser takes as it is */
        if (proto == 6) {
            if (len - l4 < 14 || (p[l4 + 13] & 0x02))        /* SYN: a new connection, or a TCB turnaround */
                break;
            flags = p[l4 + 13];
            Py_ssize_t doff = (p[l4 + 12] >> 4) * 4;
            size -= doff;
            whole_header = doff >= 20 && l4 + doff <= ip_end;
            if (whole_header)
                payload_at = l4 + doff, captured = ip_end - payload_at;
            else if (flags & 0x05)                           /* FIN, RST: only for decided flows, below */
                break;
        } else {
            size -= 8;
        }
        PyObject *k = PyBytes_FromStringAndSize((const char *)key, keylen);
        if (k == NULL) {
            failed = 1;
            break;
        }
        PyObject *entry = PyDict_GetItemWithError(flows, k);   /* borrowed */
        Py_DECREF(k);
        if (entry == NULL) {
            if (PyErr_Occurred())
                failed = 1;
            break;
        }
        if (!PyTuple_Check(entry) || PyTuple_GET_SIZE(entry) != 2) {
            PyErr_SetString(PyExc_TypeError, "_fastpath: a flow table entry is not (flow, direction)");
            failed = 1;
            break;
        }
        PyObject *flow = PyTuple_GET_ITEM(entry, 0);
        long direction = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
        int done = SLOT(flow, f_off[F_DONE]) == Py_True;
        if (!done) {
            /* A plain ACK of a flow under inspection, a watched flow's data segment (see above), or Python. */
            long c2s_data, s2c_data, packets;
            PyObject *states = SLOT(flow, f_off[F_STATES]);
            if (proto != 6 || (flags & 0x05) || !whole_header || quiet_data <= 0
                    || states == NULL || !PyDict_Check(states) || PyDict_GET_SIZE(states) == 0)
                break;
            PyObject *state;
            int kind = watched(states, watchers, &state);
            long data_budget = watchers[kind].data, packet_budget = watchers[kind].packets;
            if (int_of(flow, f_off[F_C2S_DATA], &c2s_data) || int_of(flow, f_off[F_S2C_DATA], &s2c_data)
                    || int_of(flow, f_off[F_PACKETS], &packets)) {
                failed = 1;
                break;
            }
            if (packets + 1 >= packet_budget)
                break;                                       /* Engine._spent would end the inspection */
            if (size != 0) {
                if (kind == WATCH_NONE || captured == 0 || c2s_data + s2c_data + 1 >= data_budget
                        || (direction == 0 ? c2s_data : s2c_data) == 0)
                    break;                                   /* not watched, or a first payload (kept whole) */
                int took = take_watched(flow, (int)direction, kind, state, p + payload_at, captured,
                                        u32(p + l4 + 4, 1), &watchers[kind]);
                if (took < 0) {
                    failed = 1;
                    break;
                }
                if (took == 0)
                    break;
                size = captured;                             /* the slow path counts the captured payload */
            } else if (c2s_data + s2c_data >= data_budget) {
                break;
            }
        } else if (flags & 0x05) {
            size = captured;                                 /* the slow path counts the captured payload */
        }
        if (direction != 0 && size > 0) {
            PyObject *freeze = SLOT(flow, f_off[F_FREEZE]);
            if (freeze != NULL && PyObject_IsTrue(freeze)) {
                python_fast = (flags & 0x05) == 0;           /* counted towards a freeze: Python */
                break;
            }
        }
        PyObject *when = PyFloat_FromDouble(ts);
        if (when == NULL || add_to(flow, f_off[F_PACKETS], 1) || (size > 0 && add_to(flow, f_off[F_BYTES], size))
            || add_to(flow, direction == 0 ? f_off[F_C2S] : f_off[F_S2C], 1)) {
            Py_XDECREF(when);
            failed = 1;
            break;
        }
        set_slot(flow, f_off[F_LAST_TS], when);
        if (flags & 0x04) {                                  /* RST: closed */
            set_slot(flow, f_off[F_CLOSED], Py_NewRef(Py_True));
        } else if (flags & 0x01) {                           /* FIN: closed once both ends sent one */
            long fins, sender = direction == 0 ? 1 : 2;           /* the bit of the end that sent it */
            if (int_of(flow, f_off[F_FINS], &fins) || set_int(flow, f_off[F_FINS], fins | sender)) {
                failed = 1;
                break;
            }
            set_slot(flow, f_off[F_CLOSED], Py_NewRef((fins | sender) == 3 ? Py_True : Py_False));
        }
        if (done && SLOT(flow, f_off[F_BLOCKING]) == Py_True)
            blocked++;
        taken++;
        offset = stop;
    }
    PyBuffer_Release(&view);
    if (failed)
        return NULL;
    return Py_BuildValue("nlli", offset, taken, blocked, python_fast);
}

/* ---- parse: the common frame straight into a Packet ------------------------------------ */

enum {P_SRC, P_DST, P_PROTO, P_SPORT, P_DPORT, P_PAYLOAD, P_FLAGS, P_SEQ, P_ACK, P_IPID, P_TTL, P_ETHSRC,
      P_ETHDST, P_KEY, P_L4OFF, P_FAMILY, P_VLAN, P_FRAG, P_WINDOW, P_TCPOPT, P_FRAME, P_L3OFF, P_L4END, P_N};
static const char *packet_fields[P_N] = {
    "src", "dst", "proto", "sport", "dport", "payload", "flags", "seq", "ack", "ip_id", "ttl", "eth_src",
    "eth_dst", "key", "l4_offset", "family", "vlan", "frag", "window", "tcp_options", "frame", "l3_offset",
    "l4_end"};
static Py_ssize_t p_off[P_N];
static PyTypeObject *packet_type = NULL;

static PyObject *setup_packet(PyObject *self, PyObject *cls)
{
    if (slot_offsets(cls, packet_fields, P_N, p_off))
        return NULL;
    Py_XSETREF(packet_type, (PyTypeObject *)Py_NewRef(cls));
    Py_RETURN_NONE;
}


/*
 * parse(frame) -> Packet | None
 *
 * Exactly what middlebox.packet.parse_ethernet makes of an untagged
 * Ethernet frame carrying IPv4 without options and not a fragment, or IPv6
 * without extension headers, with TCP or UDP; None for anything else (the
 * Python parser then takes it, so this never decides what is valid).
 */
static PyObject *parse(PyObject *self, PyObject *frame)
{
    if (packet_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_fastpath.setup_packet(Packet) was not called");
        return NULL;
    }
    if (!PyBytes_Check(frame))
        Py_RETURN_NONE;
    const unsigned char *p = (const unsigned char *)PyBytes_AS_STRING(frame);
    Py_ssize_t len = PyBytes_GET_SIZE(frame), end, l4;
    int family, proto;
    const unsigned char *src, *dst;
    unsigned long ip_id = 0, ttl;
    if (len >= 34 && p[12] == 0x08 && p[13] == 0x00) {
        if (p[14] != 0x45)
            Py_RETURN_NONE;                                  /* not v4, or options: Python */
        Py_ssize_t total = u16be(p + 16);
        if (total < 20 || (u16be(p + 20) & 0x3FFF))
            Py_RETURN_NONE;                                  /* malformed, or a fragment */
        end = 14 + total < len ? 14 + total : len;
        proto = p[23];
        ip_id = u16be(p + 18);
        ttl = p[22];
        src = p + 26;
        dst = p + 30;
        l4 = 34;
        family = 4;
    } else if (len >= 54 && p[12] == 0x86 && p[13] == 0xdd) {
        if ((p[14] >> 4) != 6)
            Py_RETURN_NONE;
        Py_ssize_t plen = u16be(p + 18);
        end = plen == 0 ? len : (54 + plen < len ? 54 + plen : len);
        proto = p[20];
        ttl = p[21];
        src = p + 22;
        dst = p + 38;
        l4 = 54;
        family = 6;
    } else {
        Py_RETURN_NONE;
    }
    Py_ssize_t payload_at, payload_end, doff = 0;
    unsigned sport, dport;
    unsigned long seq = 0, ack = 0, flags = 0, window = 0;
    if (proto == 6) {
        if (end - l4 < 20)
            Py_RETURN_NONE;
        doff = (p[l4 + 12] >> 4) * 4;
        if (doff < 20 || l4 + doff > end)
            Py_RETURN_NONE;
        seq = u32(p + l4 + 4, 1);
        ack = u32(p + l4 + 8, 1);
        flags = p[l4 + 13];
        window = u16be(p + l4 + 14);
        payload_at = l4 + doff;
        payload_end = end;
    } else if (proto == 17) {
        if (end - l4 < 8)
            Py_RETURN_NONE;
        Py_ssize_t ulen = u16be(p + l4 + 4);
        if (ulen < 8)
            Py_RETURN_NONE;
        payload_at = l4 + 8;
        payload_end = l4 + ulen < end ? l4 + ulen : end;
    } else {
        Py_RETURN_NONE;
    }
    if (payload_end < payload_at)
        payload_end = payload_at;
    sport = u16be(p + l4);
    dport = u16be(p + l4 + 2);
    Py_ssize_t alen = family == 4 ? 4 : 16;
    unsigned char key[37];
    key[0] = (unsigned char)proto;
    memcpy(key + 1, src, alen);
    memcpy(key + 1 + alen, dst, alen);
    memcpy(key + 1 + 2 * alen, p + l4, 4);                /* sport, dport as on the wire */

    PyObject *v[P_N] = {NULL};
    v[P_SRC] = PyBytes_FromStringAndSize((const char *)src, alen);
    v[P_DST] = PyBytes_FromStringAndSize((const char *)dst, alen);
    v[P_PROTO] = PyLong_FromLong(proto);
    v[P_SPORT] = PyLong_FromLong(sport);
    v[P_DPORT] = PyLong_FromLong(dport);
    v[P_PAYLOAD] = PyBytes_FromStringAndSize((const char *)p + payload_at, payload_end - payload_at);
    v[P_FLAGS] = PyLong_FromUnsignedLong(flags);
    v[P_SEQ] = PyLong_FromUnsignedLong(seq);
    v[P_ACK] = PyLong_FromUnsignedLong(ack);
    v[P_IPID] = PyLong_FromUnsignedLong(ip_id);
    v[P_TTL] = PyLong_FromUnsignedLong(ttl);
    v[P_ETHSRC] = PyBytes_FromStringAndSize((const char *)p + 6, 6);
    v[P_ETHDST] = PyBytes_FromStringAndSize((const char *)p, 6);
    v[P_KEY] = PyBytes_FromStringAndSize((const char *)key, 1 + 2 * alen + 4);
    v[P_L4OFF] = PyLong_FromSsize_t(l4);
    v[P_FAMILY] = PyLong_FromLong(family);
    v[P_VLAN] = PyBytes_FromStringAndSize(NULL, 0);
    v[P_FRAG] = Py_NewRef(Py_None);
    v[P_WINDOW] = PyLong_FromUnsignedLong(window);
    v[P_TCPOPT] = PyBytes_FromStringAndSize((const char *)p + l4 + 20, doff > 20 ? doff - 20 : 0);
    v[P_FRAME] = Py_NewRef(frame);
    v[P_L3OFF] = PyLong_FromLong(14);
    v[P_L4END] = PyLong_FromSsize_t(end);
    PyObject *pkt = NULL;
    for (int i = 0; i < P_N; i++)
        if (v[i] == NULL)
            goto fail;
    pkt = packet_type->tp_alloc(packet_type, 0);
    if (pkt == NULL)
        goto fail;
    for (int i = 0; i < P_N; i++)
        SLOT(pkt, p_off[i]) = v[i];                          /* the references move into the slots */
    return pkt;
fail:
    for (int i = 0; i < P_N; i++)
        Py_XDECREF(v[i]);
    return NULL;
}

/* ---- receive: the live middlebox's frames, in batches ----------------------------------- */

/*
 * Why: Python's socket.recvmsg on a packet socket also turns the sender's
 * link address into a tuple, which costs an ioctl (SIOCGIFNAME) per frame
 * on top of the call itself; the middlebox needs neither the address nor
 * one system call per frame. Under many short connections its receive path
 * was an eighth of its CPU (issue 17).
 */
#define RECV_SLOTS 64
#define RECV_SIZE 65536                     /* as recvmsg(65535): a frame never exceeds the port's MTU */
#define SO_TIMESTAMPNS_ 35                  /* SO_TIMESTAMPNS(_OLD): struct timespec */

static unsigned char *recv_buffers = NULL;

/*
 * receive(fd, max) -> list[tuple[bytes, float]]
 *
 * The frames waiting on the packet socket *fd*, at most *max* (and 64),
 * in one recvmmsg that never blocks, each with the kernel's receive time
 * (SO_TIMESTAMPNS, as time.time() counts; 0.0 without one). Empty when
 * none waits; OSError on any other failure.
 */
static PyObject *receive(PyObject *self, PyObject *args)
{
    int fd, max;
    if (!PyArg_ParseTuple(args, "ii", &fd, &max))
        return NULL;
    if (max > RECV_SLOTS)
        max = RECV_SLOTS;
    if (max < 1)
        return PyList_New(0);
    if (recv_buffers == NULL && (recv_buffers = malloc((size_t)RECV_SLOTS * RECV_SIZE)) == NULL)
        return PyErr_NoMemory();
    struct mmsghdr msgs[RECV_SLOTS];
    struct iovec iov[RECV_SLOTS];
    union { struct cmsghdr align; char buf[CMSG_SPACE(sizeof(struct timespec))]; } control[RECV_SLOTS];
    memset(msgs, 0, sizeof(struct mmsghdr) * max);
    for (int i = 0; i < max; i++) {
        iov[i].iov_base = recv_buffers + (size_t)i * RECV_SIZE;
        iov[i].iov_len = RECV_SIZE - 1;
        msgs[i].msg_hdr.msg_iov = &iov[i];
        msgs[i].msg_hdr.msg_iovlen = 1;
        msgs[i].msg_hdr.msg_control = control[i].buf;
        msgs[i].msg_hdr.msg_controllen = sizeof control[i].buf;
    }
    int n;
    Py_BEGIN_ALLOW_THREADS
    n = recvmmsg(fd, msgs, (unsigned)max, MSG_DONTWAIT, NULL);
    Py_END_ALLOW_THREADS
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return PyList_New(0);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    PyObject *out = PyList_New(n);
    if (out == NULL)
        return NULL;
    for (int i = 0; i < n; i++) {
        double stamp = 0.0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msgs[i].msg_hdr); c != NULL; c = CMSG_NXTHDR(&msgs[i].msg_hdr, c))
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SO_TIMESTAMPNS_
                    && c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(c), sizeof ts);
                stamp = (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
            }
        unsigned len = msgs[i].msg_len < RECV_SIZE - 1 ? msgs[i].msg_len : RECV_SIZE - 1;
        PyObject *item = Py_BuildValue("(y#d)", (const char *)iov[i].iov_base, (Py_ssize_t)len, stamp);
        if (item == NULL) {
            Py_DECREF(out);
            return NULL;
        }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_O, "setup(Flow): find the flow class's slot offsets"},
    {"walk", walk, METH_VARARGS,
     "walk(flows, data, offset, big_endian, tick, expiry_at, quiet_data=0, quiet_packets=0, limit=max, "
     "watch=None) -> (offset, packets, blocked, fast)"},
    {"setup_watch", setup_watch, METH_VARARGS,
     "setup_watch(Stream, tls-in-tls state, OpenVPN state): find their slot offsets"},
    {"receive", receive, METH_VARARGS,
     "receive(fd, max) -> [(frame, kernel time)]: the frames waiting on a packet socket, in one call"},
    {"setup_packet", setup_packet, METH_O, "setup_packet(Packet): find the packet class's slot offsets"},
    {"parse", parse, METH_O, "parse(frame) -> Packet | None: the common Ethernet/IP/TCP|UDP frame, as "
                             "middlebox.packet.parse_ethernet makes it; None for anything else"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastpath(void)
{
    PyObject *m = PyModule_Create(&module);
    if (m == NULL)
        return NULL;
    PyObject *names = PyTuple_New(P_N);
    if (names == NULL) {
        Py_DECREF(m);
        return NULL;
    }
    for (int i = 0; i < P_N; i++) {
        PyObject *name = PyUnicode_FromString(packet_fields[i]);
        if (name == NULL) {
            Py_DECREF(names);
            Py_DECREF(m);
            return NULL;
        }
        PyTuple_SET_ITEM(names, i, name);
    }
    if (PyModule_AddObject(m, "PACKET_FIELDS", names) < 0) {
        Py_DECREF(names);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
