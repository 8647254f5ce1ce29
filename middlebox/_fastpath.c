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
 * Flow keeps its fields in __slots__; their offsets come from the slot
 * descriptors (PyMemberDescrObject) once, at ``setup``, so reading and
 * writing them is a pointer access. The pure-Python loop in
 * middlebox/offline.py is the fallback when this is not built, and the
 * unit tests check that both give identical flows.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

static Py_ssize_t off_done = -1, off_packets, off_bytes, off_last_ts, off_c2s, off_s2c, off_blocking, off_freeze;

#define SLOT(o, off) (*(PyObject **)((char *)(o) + (off)))

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

static PyObject *setup(PyObject *self, PyObject *cls)
{
    if (slot_offset(cls, "done", &off_done) || slot_offset(cls, "packets", &off_packets)
        || slot_offset(cls, "bytes", &off_bytes) || slot_offset(cls, "last_ts", &off_last_ts)
        || slot_offset(cls, "c2s_packets", &off_c2s) || slot_offset(cls, "s2c_packets", &off_s2c)
        || slot_offset(cls, "blocking", &off_blocking) || slot_offset(cls, "freeze_at", &off_freeze)) {
        off_done = -1;
        return NULL;
    }
    Py_RETURN_NONE;
}

/* slot += by, for an int slot; -1 on error (an unset or non-int slot). */
static int add_to(PyObject *flow, Py_ssize_t off, long by)
{
    PyObject *old = SLOT(flow, off);
    if (old == NULL || !PyLong_Check(old)) {
        PyErr_SetString(PyExc_TypeError, "_fastpath: a flow counter is not an int");
        return -1;
    }
    long value = PyLong_AsLong(old);
    if (value == -1 && PyErr_Occurred())
        return -1;
    PyObject *updated = PyLong_FromLong(value + by);
    if (updated == NULL)
        return -1;
    SLOT(flow, off) = updated;
    Py_DECREF(old);
    return 0;
}

static inline uint32_t u32(const unsigned char *p, int big)
{
    return big ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3])
               : ((uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0]);
}

/*
 * walk(flows, data, offset, big_endian, tick, expiry_at) -> (offset, packets, blocked, fast)
 *
 * Walks pcap records (Ethernet link type) from *offset*, taking every
 * packet Engine.fast would take without side effects beyond counting.
 * Returns the offset of the first record it leaves to Python (or of the
 * end / a truncated last record), how many packets it took, and how many
 * of those belonged to blocked flows, and whether Engine.fast takes the
 * record it stopped at (1: an expiry deadline or a freeze count) or it
 * needs the slow path (0), so Python does not look at it twice.
 */
static PyObject *walk(PyObject *self, PyObject *args)
{
    PyObject *flows, *data;
    Py_ssize_t offset;
    int big;
    double tick, expiry_at;
    if (!PyArg_ParseTuple(args, "O!Onpdd", &PyDict_Type, &flows, &data, &offset, &big, &tick, &expiry_at))
        return NULL;
    if (off_done < 0) {
        PyErr_SetString(PyExc_RuntimeError, "_fastpath.setup(Flow) was not called");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(data, &view, PyBUF_SIMPLE) < 0)
        return NULL;
    const unsigned char *buf = view.buf;
    Py_ssize_t end = view.len;
    long taken = 0, blocked = 0;
    int failed = 0, python_fast = 0;   /* 1: Engine.fast takes the record (expiry or freeze), 0: the slow path */
    unsigned char key[37];
    while (offset + 16 <= end) {
        const unsigned char *h = buf + offset;
        uint32_t caplen = u32(h + 8, big);
        Py_ssize_t s = offset + 16, stop = s + (Py_ssize_t)caplen;
        if (stop > end)
            break;                                           /* truncated: Python ends there */
        double ts = (double)u32(h, big) + (double)u32(h + 4, big) * tick;
        if (ts >= expiry_at) {
            python_fast = 1;                                 /* Python expires idle flows first */
            break;
        }
        const unsigned char *p = buf + s;
        Py_ssize_t len = stop - s, l4, keylen;
        long size;
        int proto;
        if (len >= 38 && p[12] == 0x08 && p[13] == 0x00) {
            if (p[14] != 0x45 || (p[20] & 0x3F) || p[21])
                break;                                       /* options or a fragment */
            key[0] = p[23];
            memcpy(key + 1, p + 26, 12);
            keylen = 13;
            size = ((long)p[16] << 8 | p[17]) - 20;
            proto = p[23];
            l4 = 34;
        } else if (len >= 58 && p[12] == 0x86 && p[13] == 0xdd) {
            if (p[20] != 6 && p[20] != 17)
                break;                                       /* extension headers */
            key[0] = p[20];
            memcpy(key + 1, p + 22, 36);
            keylen = 37;
            size = (long)p[18] << 8 | p[19];
            proto = p[20];
            l4 = 54;
        } else {
            break;
        }
        if (proto == 6) {
            if (len - l4 < 14 || (p[l4 + 13] & 0x07))        /* FIN, SYN, RST: the flow's lifecycle */
                break;
            size -= (p[l4 + 12] >> 4) * 4;
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
        if (SLOT(flow, off_done) != Py_True)
            break;
        long direction = PyLong_AsLong(PyTuple_GET_ITEM(entry, 1));
        if (direction != 0) {
            PyObject *freeze = SLOT(flow, off_freeze);
            if (freeze != NULL && PyObject_IsTrue(freeze) && size > 0) {
                python_fast = 1;                             /* counted towards a freeze: Python */
                break;
            }
        }
        PyObject *when = PyFloat_FromDouble(ts);
        if (when == NULL || add_to(flow, off_packets, 1) || add_to(flow, off_bytes, size > 0 ? size : 0)
            || add_to(flow, direction == 0 ? off_c2s : off_s2c, 1)) {
            Py_XDECREF(when);
            failed = 1;
            break;
        }
        PyObject *old = SLOT(flow, off_last_ts);
        SLOT(flow, off_last_ts) = when;
        Py_XDECREF(old);
        if (SLOT(flow, off_blocking) == Py_True)
            blocked++;
        taken++;
        offset = stop;
    }
    PyBuffer_Release(&view);
    if (failed)
        return NULL;
    return Py_BuildValue("nlli", offset, taken, blocked, python_fast);
}

static PyMethodDef methods[] = {
    {"setup", setup, METH_O, "setup(Flow): find the flow class's slot offsets"},
    {"walk", walk, METH_VARARGS,
     "walk(flows, data, offset, big_endian, tick, expiry_at) -> (offset, packets, blocked, fast)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_fastpath", NULL, -1, methods};

PyMODINIT_FUNC PyInit__fastpath(void)
{
    return PyModule_Create(&module);
}
