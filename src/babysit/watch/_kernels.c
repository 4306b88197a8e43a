/* babysit.watch._kernels: the monitor's work on a CPU, one call each.
 *
 * Right after a training step the caches are cold and every call from Python costs several
 * microseconds however little it computes (a NumPy allocation or view included; a PyTorch op
 * on a small CPU tensor 5-30 us). So what the monitor does on every step, on its sampled
 * steps and when it writes its records is one call here rather than the 4-10 NumPy or
 * PyTorch ops (or thousands of Python-level conversions) it would take:
 *
 *   step_norms, planned_step_norms   every step: the update:weight ratios' squared norms
 *   summarize, square_sums           sampled steps: histograms, unit summaries, grad norms
 *   ratio_lines, json_lines          batch reads: the records' JSON lines
 *   loss_curve                       diagnoses: the loss curve's shape, in one pass
 *   StepClock                        every step: the step count, the losses, and the hook
 *                                    that runs planned_step_norms' plan; at batch reads
 *                                    the steps' records and JSON lines
 *
 * Each has a NumPy/PyTorch/json twin in babysit.watch that serves where this module was not
 * compiled, and tests/watch/test_watch_kernels.py checks that the two agree.
 *
 * Precision of the sums: a float32 difference of two float32 numbers is exact when they are
 * within a factor of two (an update is ~1e-3 of its weight), and its square rounds at 2^-24.
 * The squares are summed in float32 over blocks of BLOCK values (a relative error of at most
 * ~BLOCK * 2^-24 / lanes, about 1e-6) and the blocks' sums in double, so the compiler may
 * vectorize the inner loops (the module is built with -fassociative-math where the compiler
 * takes it). NaN and Inf propagate, as the monitor's nonfinite diagnosis needs.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define BLOCK 256

/* Where the compiler can, a second copy of the loop for CPUs with AVX2 (8 float lanes, not
 * SSE2's 4), picked when the module loads. */
#if defined(__GNUC__) && defined(__x86_64__) && defined(__linux__)
#define WIDE_LANES __attribute__((target_clones("avx2", "default")))
#else
#define WIDE_LANES
#endif

WIDE_LANES static void
sums_f32(const float *w, float *before, Py_ssize_t n, double *update_sq, double *weight_sq)
{
    double du = 0.0, dw = 0.0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t end = start + BLOCK < n ? start + BLOCK : n;
        float bu = 0.0f, bw = 0.0f;
        for (Py_ssize_t j = start; j < end; j++) {
            float a = w[j], d = before[j] - a;
            before[j] = a;
            bu += d * d;
            bw += a * a;
        }
        du += bu;
        dw += bw;
    }
    *update_sq = du;
    *weight_sq = dw;
}

WIDE_LANES static void
sums_f64(const double *w, double *before, Py_ssize_t n, double *update_sq, double *weight_sq)
{
    double du = 0.0, dw = 0.0;
    for (Py_ssize_t j = 0; j < n; j++) {
        double a = w[j], d = before[j] - a;
        before[j] = a;
        du += d * d;
        dw += a * a;
    }
    *update_sq = du;
    *weight_sq = dw;
}

WIDE_LANES static void
sums_f32_squares(const float *x, Py_ssize_t n, double *total)
{
    double sum = 0.0;
    for (Py_ssize_t start = 0; start < n; start += BLOCK) {
        Py_ssize_t end = start + BLOCK < n ? start + BLOCK : n;
        float block = 0.0f;
        for (Py_ssize_t j = start; j < end; j++)
            block += x[j] * x[j];
        sum += block;
    }
    *total = sum;
}

WIDE_LANES static void
sums_f64_squares(const double *x, Py_ssize_t n, double *total)
{
    double sum = 0.0;
    for (Py_ssize_t j = 0; j < n; j++)
        sum += x[j] * x[j];
    *total = sum;
}

/* One tensor's part of a step, for step_norms and planned_step_norms alike: its squared update
 * and weight norms into sums[i] and sums[k + i], its segment of `before` := w. Returns
 * whether the tensor did not change at all. */
static int
tensor_step(const void *w, char *before, Py_ssize_t n, int itemsize, double *sums, Py_ssize_t i, Py_ssize_t k)
{
    if (itemsize == 4)
        sums_f32((const float *)w, (float *)before, n, &sums[i], &sums[k + i]);
    else
        sums_f64((const double *)w, (double *)before, n, &sums[i], &sums[k + i]);
    return sums[i] == 0.0;
}

static int
itemsize_of(const Py_buffer *view)
{
    if (view->format == NULL || view->format[1] != '\0')
        return 0;
    if (view->format[0] == 'f' && view->itemsize == 4)
        return 4;
    if (view->format[0] == 'd' && view->itemsize == 8)
        return 8;
    return 0;
}

/* step_norms(views, before, out, row) runs right after an optimizer step. For every
 * parameter tensor i (a flat, contiguous buffer in `views`, whose segments lie one after
 * another in `before`, the weights as they were before the step), with k = len(views):
 *
 *     out[row, i]     = sum_j (before[j] - w[j])^2     the squared norm of the update
 *     out[row, k + i] = sum_j w[j]^2                   the squared norm of the weights now
 *     before[j]       = w[j]                           the next step's "before"
 *
 * `out` is a C-contiguous float64 block of rows of 2k; `views` and `before` are all float32
 * ("f") or all float64 ("d"). Returns how many tensors did not change at all: the caller
 * then checks whether one was frozen or got new storage (the view then watches the old
 * one). One pass, where NumPy needs four (concatenate, subtract, multiply, add.reduceat). */
static PyObject *
step_norms(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "step_norms(views: list, before, out, row: int)");
        return NULL;
    }
    PyObject *views = args[0];
    Py_ssize_t k = PyList_GET_SIZE(views), unchanged = 0;
    Py_ssize_t row = PyLong_AsSsize_t(args[3]);
    if (row == -1 && PyErr_Occurred())
        return NULL;
    Py_buffer before, out;
    if (PyObject_GetBuffer(args[1], &before, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[2], &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&before);
        return NULL;
    }
    int size = itemsize_of(&before);
    double *sums = (double *)out.buf + 2 * k * row;
    char *at = (char *)before.buf, *end = at + before.len;
    int ok = size != 0 && itemsize_of(&out) == 8 && row >= 0 && (row + 1) * 2 * k * 8 <= out.len;
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "step_norms: before must be float32 or float64, out float64 "
                                          "with room for row `row` of 2k");
    for (Py_ssize_t i = 0; ok && i < k; i++) {
        Py_buffer w;
        if (PyObject_GetBuffer(PyList_GET_ITEM(views, i), &w, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            ok = 0;
            break;
        }
        if (itemsize_of(&w) != size || at + w.len > end) {
            PyErr_SetString(PyExc_ValueError, "step_norms: a view's dtype or size does not fit `before`");
            ok = 0;
        } else {
            unchanged += tensor_step(w.buf, at, w.len / size, size, sums, i, k);
        }
        at += w.len;
        PyBuffer_Release(&w);
    }
    PyBuffer_Release(&out);
    PyBuffer_Release(&before);
    if (!ok)
        return NULL;
    return PyLong_FromSsize_t(unchanged);
}

/* summarize(x, mode, bins, low, high, max_values, edge, counts, units)
 *
 * One layer's activations (or the gradient flowing into them) on a sampled step, in two
 * passes over `x` (a C-contiguous float32 or float64 array of n values, shape (N, C, ...)):
 *
 * pass 1, all values: the range's scale (mode 1: max x; mode 2: max |x|; NaN if any value is
 * NaN; at least 1e-30, so an all-zero layer has a range), the values with |x - (low+high)/2|
 * >= edge (when edge >= 0: saturated tanh/sigmoid units), the values > 0 (fired ReLUs; not
 * counted in mode 2), the sum of squares; and, when `units` is a writable bool array of C
 * entries: units[c] = 1 where unit (feature or channel) c has a value > 0 (OR-ed in).
 *
 * pass 2, an evenly strided sample x[0], x[stride], ... (stride 1 up to `max_values` values,
 * else n / max_values made odd, so it does not line up with power-of-two widths): the
 * histogram `counts` (bins int64, overwritten) over [low, high] (mode 0) or, as the PyTorch
 * path bins x / scale, over [0, 1] (mode 1) or [-1, 1] (mode 2), with torch.histc's rule:
 * bin = (v - low) * bins / (high - low) truncated, v == high in the last bin, values outside
 * the range or NaN not counted.
 *
 * Returns (low, high, saturated, positives, sum of squares): the histogram's range in x's
 * units ([low, high], [0, scale] or [-scale, scale]).
 */
#define SUMMARIZE(NAME, T, IT, ABS)                                                                    \
    WIDE_LANES static void NAME(const T *x, Py_ssize_t n, int mode, int bins, double low, double high, \
                     Py_ssize_t stride, double edge, int64_t *counts, char *units,              \
                     Py_ssize_t channels, Py_ssize_t inner, double *result)                     \
    {                                                                                           \
        T center = (T)((low + high) / 2), cut = (T)edge;                                        \
        IT top = 0; /* the largest value (mode 2: |value|) as its bits, see below */             \
        double saturated = 0, positives = 0, squares = 0;                                       \
        for (Py_ssize_t start = 0; start < n; start += BLOCK) {                                 \
            Py_ssize_t end = start + BLOCK < n ? start + BLOCK : n;                             \
            /* one simple loop per mode, float counters (exact up to BLOCK): vectorizable. The \
             * maximum is taken over the bits as integers, which order non-negative floats as  \
             * the floats do (a float max is not vectorized by the compiler unless NaN is ruled \
             * out); negative values then count as below 0, as the clamp at 1e-30 makes them   \
             * anyway, and NaN shows in the sum of squares. */                                 \
            T block_squares = 0, block_positives = 0, block_saturated = 0;                      \
            if (mode == 2) {                                                                    \
                for (Py_ssize_t j = start; j < end; j++) {                                      \
                    T a = x[j];                                                                 \
                    IT bits;                                                                    \
                    memcpy(&bits, &a, sizeof bits);                                             \
                    bits &= ABS;                                                                \
                    top = bits > top ? bits : top;                                              \
                    block_squares += a * a;                                                     \
                }                                                                               \
            } else if (mode == 1) {                                                             \
                for (Py_ssize_t j = start; j < end; j++) {                                      \
                    T a = x[j];                                                                 \
                    IT bits;                                                                    \
                    memcpy(&bits, &a, sizeof bits);                                             \
                    top = bits > top ? bits : top;                                              \
                    block_squares += a * a;                                                     \
                    block_positives += a > 0 ? (T)1 : (T)0;                                     \
                }                                                                               \
            } else {                                                                            \
                for (Py_ssize_t j = start; j < end; j++) {                                      \
                    T a = x[j], off = a - center;                                               \
                    off = off < 0 ? -off : off;                                                 \
                    block_squares += a * a;                                                     \
                    block_positives += a > 0 ? (T)1 : (T)0;                                     \
                    block_saturated += off >= cut ? (T)1 : (T)0;                                \
                }                                                                               \
            }                                                                                   \
            squares += block_squares;                                                           \
            positives += block_positives;                                                       \
            saturated += block_saturated;                                                       \
        }                                                                                       \
        T largest;                                                                              \
        memcpy(&largest, &top, sizeof largest);                                                 \
        double scale = 0.0;                                                                     \
        if (mode != 0)                                                                          \
            scale = squares != squares ? squares : (largest > 1e-30 ? (double)largest : 1e-30);  \
        if (units != NULL && inner == 1) {                                                      \
            for (Py_ssize_t at = 0; at < n; at += channels)                                     \
                for (Py_ssize_t c = 0; c < channels; c++)                                       \
                    units[c] |= x[at + c] > 0;                                                  \
        } else if (units != NULL) {                                                             \
            for (Py_ssize_t at = 0, c = 0; at < n; at += inner, c = c + 1 == channels ? 0 : c + 1) { \
                if (units[c])                                                                   \
                    continue;                                                                   \
                for (Py_ssize_t j = at; j < at + inner; j++)                                    \
                    if (x[j] > 0) {                                                             \
                        units[c] = 1;                                                           \
                        break;                                                                  \
                    }                                                                           \
            }                                                                                   \
        }                                                                                       \
        T lo = (T)(mode == 0 ? low : mode == 1 ? 0.0 : -1.0), hi = (T)(mode == 0 ? high : 1.0); \
        T divisor = (T)(mode == 0 ? 1.0 : scale);                                               \
        for (int b = 0; b < bins; b++)                                                          \
            counts[b] = 0;                                                                      \
        for (Py_ssize_t j = 0; j < n; j += stride) {                                            \
            T v = mode == 0 ? x[j] : x[j] / divisor;                                            \
            if (v >= lo && v <= hi) {                                                           \
                Py_ssize_t b = (Py_ssize_t)((v - lo) * bins / (hi - lo));                       \
                counts[b == bins ? bins - 1 : b] += 1;                                          \
            }                                                                                   \
        }                                                                                       \
        result[0] = scale;                                                                      \
        result[1] = edge >= 0 ? saturated : 0.0;                                                \
        result[2] = positives;                                                                  \
        result[3] = squares;                                                                    \
    }

SUMMARIZE(summarize_f32, float, int32_t, INT32_MAX)
SUMMARIZE(summarize_f64, double, int64_t, INT64_MAX)

static PyObject *
summarize(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 9) {
        PyErr_SetString(PyExc_TypeError, "summarize(x, mode, bins, low, high, max_values, edge, counts, units)");
        return NULL;
    }
    int mode = PyLong_AsLong(args[1]), bins = PyLong_AsLong(args[2]);
    double low = PyFloat_AsDouble(args[3]), high = PyFloat_AsDouble(args[4]);
    Py_ssize_t max_values = PyLong_AsSsize_t(args[5]);
    double edge = PyFloat_AsDouble(args[6]);
    if (PyErr_Occurred())
        return NULL;
    Py_buffer x, counts, units;
    int have_units = args[8] != Py_None;
    if (PyObject_GetBuffer(args[0], &x, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (PyObject_GetBuffer(args[7], &counts, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&x);
        return NULL;
    }
    if (have_units && PyObject_GetBuffer(args[8], &units, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0) {
        PyBuffer_Release(&counts);
        PyBuffer_Release(&x);
        return NULL;
    }
    int size = itemsize_of(&x);
    Py_ssize_t n = size ? x.len / size : 0;
    Py_ssize_t channels = x.ndim >= 2 ? x.shape[1] : 1, inner = 1;
    for (int d = 2; d < x.ndim; d++)
        inner *= x.shape[d];
    Py_ssize_t stride = n <= max_values ? 1 : (n / max_values) | 1;
    int counts_ok = counts.itemsize == 8 && counts.format != NULL && strchr("ql", counts.format[0]) != NULL
                    && counts.format[1] == '\0';
    int ok = size != 0 && n > 0 && mode >= 0 && mode <= 2 && bins > 0 && max_values > 0
             && (mode != 0 || high > low) && counts_ok && counts.len == (Py_ssize_t)bins * 8
             && (!have_units || (x.ndim >= 2 && units.len == channels && channels > 0));
    double result[4];
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "summarize: x must be a non-empty float32 or float64 array, counts "
                                          "`bins` int64, units one byte per x.shape[1]");
    else if (size == 4)
        summarize_f32((const float *)x.buf, n, mode, bins, low, high, stride, edge, (int64_t *)counts.buf,
                      have_units ? (char *)units.buf : NULL, channels, inner, result);
    else
        summarize_f64((const double *)x.buf, n, mode, bins, low, high, stride, edge, (int64_t *)counts.buf,
                      have_units ? (char *)units.buf : NULL, channels, inner, result);
    if (have_units)
        PyBuffer_Release(&units);
    PyBuffer_Release(&counts);
    PyBuffer_Release(&x);
    if (!ok)
        return NULL;
    double scale = result[0];
    if (mode == 1) {
        low = 0.0;
        high = scale;
    } else if (mode == 2) {
        low = -scale;
        high = scale;
    }
    return Py_BuildValue("(ddddd)", low, high, result[1], result[2], result[3]);
}

/* square_sums(buffers, out): out[i] = the sum of squares of buffers[i] (C-contiguous float32
 * or float64), in double; a buffer of None counts 0. The gradients' norms on a sampled step. */
static PyObject *
square_sums(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "square_sums(buffers: list, out)");
        return NULL;
    }
    Py_ssize_t k = PyList_GET_SIZE(args[0]);
    Py_buffer out;
    if (PyObject_GetBuffer(args[1], &out, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_WRITABLE) < 0)
        return NULL;
    int ok = itemsize_of(&out) == 8 && out.len == k * 8;
    if (!ok)
        PyErr_SetString(PyExc_ValueError, "square_sums: out must hold len(buffers) float64");
    double *sums = (double *)out.buf;
    for (Py_ssize_t i = 0; ok && i < k; i++) {
        PyObject *item = PyList_GET_ITEM(args[0], i);
        sums[i] = 0.0;
        if (item == Py_None)
            continue;
        Py_buffer b;
        if (PyObject_GetBuffer(item, &b, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0) {
            ok = 0;
            break;
        }
        int size = itemsize_of(&b);
        if (size == 4)
            sums_f32_squares((const float *)b.buf, b.len / 4, &sums[i]);
        else if (size == 8)
            sums_f64_squares((const double *)b.buf, b.len / 8, &sums[i]);
        else {
            PyErr_SetString(PyExc_ValueError, "square_sums: buffers must be float32 or float64");
            ok = 0;
        }
        PyBuffer_Release(&b);
    }
    PyBuffer_Release(&out);
    if (!ok)
        return NULL;
    Py_RETURN_NONE;
}

/* The ratios' lines are most of what the monitor writes (a line a step, a number a tensor),
 * and Python formats a float in ~0.25 us (%.6g) to ~0.8 us (repr) here. These write one in
 * ~30 ns: 6 significant digits, trailing zeros dropped, as %g would (positional from 1e-5
 * to 1e6, else with an exponent) — a JSON number within half a unit of the 6th digit. */
static const double POW10[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
                                1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};

static double
power_of_ten(int e)
{
    if (e >= 0)
        return e <= 22 ? POW10[e] : pow(10.0, e);
    return -e <= 22 ? 1.0 / POW10[-e] : pow(10.0, e);
}

static char *
write_6g(char *at, double v)
{
    if (v == 0) {
        *at++ = '0';
        return at;
    }
    if (v < 0) {
        *at++ = '-';
        v = -v;
    }
    int e = (int)floor(log10(v));
    /* m: the 6 significant digits as an integer in [1e5, 1e6) */
    double scaled = e <= 5 ? v * power_of_ten(5 - e) : v / power_of_ten(e - 5);
    long m = (long)(scaled + 0.5);
    if (m >= 1000000) {
        m = (m + 5) / 10;
        e += 1;
    } else if (m < 100000) {
        m = (long)(v * power_of_ten(6 - e) + 0.5);
        e -= 1;
    }
    char digits[7];
    for (int i = 5; i >= 0; i--, m /= 10)
        digits[i] = (char)('0' + m % 10);
    int count = 6;
    while (count > 1 && digits[count - 1] == '0')
        count--;
    if (e >= -5 && e < 6) {
        if (e < 0) {
            *at++ = '0';
            *at++ = '.';
            for (int i = 0; i < -e - 1; i++)
                *at++ = '0';
            memcpy(at, digits, count);
            at += count;
        } else {
            for (int i = 0; i <= e; i++)
                *at++ = i < count ? digits[i] : '0';
            if (count > e + 1) {
                *at++ = '.';
                memcpy(at, digits + e + 1, count - e - 1);
                at += count - e - 1;
            }
        }
    } else {
        *at++ = digits[0];
        if (count > 1) {
            *at++ = '.';
            memcpy(at, digits + 1, count - 1);
            at += count - 1;
        }
        at += sprintf(at, "e%c%02d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    return at;
}

/* ratio_lines(steps, rows): the ratios.jsonl lines of `rows` (C-contiguous float64, one row
 * of ratios per step), '{"step": s, "ratios": [r, ...]}' each; None if a value is NaN or
 * infinite (the caller then writes babysit's "nan"/"inf" form). */
static PyObject *
ratio_lines(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyList_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "ratio_lines(steps: list, rows)");
        return NULL;
    }
    Py_buffer rows;
    if (PyObject_GetBuffer(args[1], &rows, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    Py_ssize_t m = PyList_GET_SIZE(args[0]);
    Py_ssize_t k = rows.ndim == 2 ? rows.shape[1] : 0;
    if (itemsize_of(&rows) != 8 || rows.ndim != 2 || rows.shape[0] != m) {
        PyBuffer_Release(&rows);
        PyErr_SetString(PyExc_ValueError, "ratio_lines: rows must be float64 of shape (len(steps), k)");
        return NULL;
    }
    const double *values = (const double *)rows.buf;
    for (Py_ssize_t i = 0; i < m * k; i++)
        if (!isfinite(values[i])) {
            PyBuffer_Release(&rows);
            Py_RETURN_NONE;
        }
    char *text = PyMem_Malloc((size_t)(m * (48 + 16 * k)) + 1);
    if (text == NULL) {
        PyBuffer_Release(&rows);
        return PyErr_NoMemory();
    }
    char *at = text;
    for (Py_ssize_t i = 0; i < m; i++) {
        long long step = PyLong_AsLongLong(PyList_GET_ITEM(args[0], i));
        if (step == -1 && PyErr_Occurred()) {
            PyMem_Free(text);
            PyBuffer_Release(&rows);
            return NULL;
        }
        at += sprintf(at, "{\"step\": %lld, \"ratios\": [", step);
        for (Py_ssize_t j = 0; j < k; j++) {
            if (j > 0) {
                *at++ = ',';
                *at++ = ' ';
            }
            at = write_6g(at, values[i * k + j]);
        }
        memcpy(at, "]}\n", 3);
        at += 3;
    }
    PyObject *result = PyUnicode_DecodeASCII(text, at - text, NULL);
    PyMem_Free(text);
    PyBuffer_Release(&rows);
    return result;
}

/* json_lines(records): the JSON lines of a list of dicts, as json.dumps(record,
 * allow_nan=False) writes them (", " and ": " separators), for the monitor's records: ints,
 * bools, None, finite floats, plain ASCII strings, and lists and dicts of those. None when a
 * record holds anything else (NaN, an escaped character, another type): the caller then
 * uses the json module. Floats are written in the shortest of 15, 16 or 17 significant
 * digits that reads back to the same double, as repr does; a list of 40 histogram counts
 * takes ~1 us here against ~8 us in the json module. */
typedef struct {
    char *text;
    Py_ssize_t used, size;
} Text;

static int
reserve_text(Text *t, Py_ssize_t more)
{
    if (t->used + more <= t->size)
        return 1;
    Py_ssize_t size = (t->size + more) * 2;
    char *bigger = PyMem_Realloc(t->text, (size_t)size);
    if (bigger == NULL)
        return 0;
    t->text = bigger;
    t->size = size;
    return 1;
}

static int
add_text(Text *t, const char *s, Py_ssize_t n)
{
    if (!reserve_text(t, n))
        return 0;
    memcpy(t->text + t->used, s, (size_t)n);
    t->used += n;
    return 1;
}

/* A float as JSON, exactly: 17 significant digits read back to the same double; where 15
 * or 16 do, those (as repr would write 0.1: "0.1"), and ".0" where %g leaves no point. */
static int
format_double(char *number, size_t size, double v, int shortest)
{
    int n = 0;
    for (int digits = shortest ? 15 : 17; digits <= 17; digits++) {
        n = snprintf(number, size, "%.*g", digits, v);
        if (digits == 17 || strtod(number, NULL) == v)
            break;
    }
    if (strpbrk(number, ".e") == NULL) {
        number[n++] = '.';
        number[n++] = '0';
        number[n] = '\0';
    }
    return n;
}

static int write_json(Text *t, PyObject *value, int depth);

/* 1: written; 0: not a value this writer takes (the caller falls back); -1: out of memory */
static int
write_json(Text *t, PyObject *value, int depth)
{
    char number[40];
    if (depth > 8)
        return 0;
    if (value == Py_None)
        return add_text(t, "null", 4) ? 1 : -1;
    if (PyBool_Check(value))
        return (value == Py_True ? add_text(t, "true", 4) : add_text(t, "false", 5)) ? 1 : -1;
    if (PyLong_CheckExact(value)) {
        int overflow;
        long long v = PyLong_AsLongLongAndOverflow(value, &overflow);
        if (overflow || (v == -1 && PyErr_Occurred())) {
            PyErr_Clear();
            return 0;
        }
        /* by hand: snprintf takes ~100 ns a number, this ~10 */
        unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
        char *end = number + sizeof number, *at = end;
        do {
            *--at = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--at = '-';
        return add_text(t, at, end - at) ? 1 : -1;
    }
    if (PyFloat_Check(value)) {
        double v = PyFloat_AS_DOUBLE(value);
        if (!isfinite(v))
            return 0;
        int n = format_double(number, sizeof number, v, 1);
        return add_text(t, number, n) ? 1 : -1;
    }
    if (PyUnicode_CheckExact(value)) {
        Py_ssize_t n;
        const char *s = PyUnicode_AsUTF8AndSize(value, &n);
        if (s == NULL) {
            PyErr_Clear();
            return 0;
        }
        for (Py_ssize_t i = 0; i < n; i++)
            if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] >= 0x7f || s[i] == '"' || s[i] == '\\')
                return 0;
        if (!reserve_text(t, n + 2))
            return -1;
        t->text[t->used++] = '"';
        memcpy(t->text + t->used, s, (size_t)n);
        t->used += n;
        t->text[t->used++] = '"';
        return 1;
    }
    if (PyList_CheckExact(value)) {
        if (!add_text(t, "[", 1))
            return -1;
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(value); i++) {
            if (i > 0 && !add_text(t, ", ", 2))
                return -1;
            int done = write_json(t, PyList_GET_ITEM(value, i), depth + 1);
            if (done != 1)
                return done;
        }
        return add_text(t, "]", 1) ? 1 : -1;
    }
    if (PyDict_CheckExact(value)) {
        PyObject *key, *item;
        Py_ssize_t at = 0;
        int first = 1;
        if (!add_text(t, "{", 1))
            return -1;
        while (PyDict_Next(value, &at, &key, &item)) {
            if (!PyUnicode_CheckExact(key))
                return 0;
            if (!first && !add_text(t, ", ", 2))
                return -1;
            first = 0;
            int done = write_json(t, key, depth + 1);
            if (done != 1)
                return done;
            if (!add_text(t, ": ", 2))
                return -1;
            done = write_json(t, item, depth + 1);
            if (done != 1)
                return done;
        }
        return add_text(t, "}", 1) ? 1 : -1;
    }
    return 0;
}

/* One steps.jsonl line, '{"step": s, "epoch": e, "loss": x}': the loss (finite) with 17
 * significant digits (exact; a float32 loss needs them anyway). 0 when out of memory. */
static int
add_step_line(Text *t, long long step, long long epoch, double loss)
{
    char number[40];
    format_double(number, sizeof number, loss, 0);
    if (!reserve_text(t, 96))
        return 0;
    t->used += snprintf(t->text + t->used, 96, "{\"step\": %lld, \"epoch\": %lld, \"loss\": %s}\n", step, epoch,
                        number);
    return 1;
}

static PyObject *
json_lines(PyObject *module, PyObject *records)
{
    if (!PyList_Check(records)) {
        PyErr_SetString(PyExc_TypeError, "json_lines(records: list of dicts)");
        return NULL;
    }
    Text t = {NULL, 0, 0};
    if (!reserve_text(&t, 256 * (PyList_GET_SIZE(records) + 1)))
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < PyList_GET_SIZE(records); i++) {
        PyObject *record = PyList_GET_ITEM(records, i);
        int done = PyDict_CheckExact(record) ? write_json(&t, record, 0) : 0;
        if (done == 1 && !add_text(&t, "\n", 1))
            done = -1;
        if (done != 1) {
            PyMem_Free(t.text);
            if (done == -1)
                return PyErr_NoMemory();
            Py_RETURN_NONE;
        }
    }
    PyObject *result = PyUnicode_DecodeASCII(t.text, t.used, NULL);
    PyMem_Free(t.text);
    return result;
}

/* planned_step_norms(plan, row): what step_norms(views, before, out, row) does, for buffers
 * described once by `plan` (bytes: int64 k, itemsize, address of before, of out, out's rows,
 * then address and length of each view). Acquiring eight buffers costs ~4 us right after a
 * training step, as much as the arithmetic; the caller keeps the arrays alive and makes a new
 * plan whenever one of them changes. */
/* The plan's step for `row`: how many tensors did not change, or -1 for a bad plan or a row
 * out of its block (no exception set). */
static Py_ssize_t
run_plan(PyObject *plan_bytes, Py_ssize_t row)
{
    const int64_t *plan = (const int64_t *)PyBytes_AS_STRING(plan_bytes);
    Py_ssize_t size = PyBytes_GET_SIZE(plan_bytes) / 8;
    int64_t k = size >= 5 ? plan[0] : -1;
    if (k < 0 || size != 5 + 2 * k || (plan[1] != 4 && plan[1] != 8) || row < 0 || row >= plan[4])
        return -1;
    char *at = (char *)(intptr_t)plan[2];
    double *sums = (double *)(intptr_t)plan[3] + 2 * k * row;
    Py_ssize_t unchanged = 0;
    for (int64_t i = 0; i < k; i++) {
        Py_ssize_t n = (Py_ssize_t)plan[6 + 2 * i];
        unchanged += tensor_step((const void *)(intptr_t)plan[5 + 2 * i], at, n, (int)plan[1], sums, i, k);
        at += n * plan[1];
    }
    return unchanged;
}

static PyObject *
planned_step_norms(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2 || !PyBytes_CheckExact(args[0])) {
        PyErr_SetString(PyExc_TypeError, "planned_step_norms(plan: bytes, row: int)");
        return NULL;
    }
    Py_ssize_t row = PyLong_AsSsize_t(args[1]);
    if (row == -1 && PyErr_Occurred())
        return NULL;
    Py_ssize_t unchanged = run_plan(args[0], row);
    if (unchanged < 0) {
        PyErr_SetString(PyExc_ValueError, "planned_step_norms: a bad plan, or no room for that row");
        return NULL;
    }
    return PyLong_FromSsize_t(unchanged);
}

/* StepClock: the monitor's bookkeeping on every step, in C, because it runs right after a
 * training step, when a Python call costs ~1 us of cache misses for a few attribute reads.
 * babysit.watch.clock.StepClock is its Python twin and documents it; in short:
 *
 *   clock.step(loss)                 the losses: (steps, epoch, loss) kept until take(); a
 *                                    loss that is not a float goes through on_loss(loss) first;
 *                                    on_batch() every flush_every losses; steps += 1 first when
 *                                    counts_steps (no optimizer hook counts them)
 *   clock(optimizer, args, kwargs)   the optimizer's post-step hook: steps += 1, then the update
 *                                    ratios' plan for the next row (ratios = [plan, row steps])
 *                                    when the step is a plain one (steps < next_special, a row
 *                                    free, no tensor unchanged); else on_step(steps, unchanged),
 *                                    Python's path, which does all the step's work that is left.
 */
typedef struct {
    PyObject_HEAD
    long long steps, epoch, next_special;
    Py_ssize_t flush_every;
    char counts_steps;
    /* the losses not yet taken, as plain numbers: no Python object made per step (with cold
     * caches an allocation is the costliest part of a step's record). A loss kept as an
     * object (a tensor) is in `objects` at its index, its value slot unused. */
    Py_ssize_t pending, capacity;
    long long *step_of, *epoch_of;
    double *value_of;
    PyObject *objects, *ratios, *on_loss, *on_batch, *on_step;
} StepClock;

/* the clock's object fields, for the garbage collector */
#define CLOCK_OBJECTS(APPLY) APPLY(objects) APPLY(ratios) APPLY(on_loss) APPLY(on_batch) APPLY(on_step)
#define VISIT_FIELD(name) Py_VISIT(self->name);
#define CLEAR_FIELD(name) Py_CLEAR(self->name);

static int
clock_traverse(StepClock *self, visitproc visit, void *arg)
{
    CLOCK_OBJECTS(VISIT_FIELD)
    return 0;
}

static int
clock_clear(StepClock *self)
{
    CLOCK_OBJECTS(CLEAR_FIELD)
    return 0;
}

static void
clock_dealloc(StepClock *self)
{
    PyObject_GC_UnTrack(self);
    clock_clear(self);
    PyMem_Free(self->step_of);
    PyMem_Free(self->epoch_of);
    PyMem_Free(self->value_of);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *
clock_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    StepClock *self = (StepClock *)type->tp_alloc(type, 0);
    if (self == NULL)
        return NULL;
    self->epoch = 1;
    self->next_special = (long long)1 << 62;
    self->flush_every = 50;
    self->counts_steps = 1;
    self->objects = PyDict_New();
    self->ratios = Py_NewRef(Py_None);
    self->on_loss = Py_NewRef(Py_None);
    self->on_batch = Py_NewRef(Py_None);
    self->on_step = Py_NewRef(Py_None);
    if (self->objects == NULL) {
        Py_DECREF(self);
        return NULL;
    }
    return (PyObject *)self;
}

static int
clock_grow(StepClock *self)
{
    Py_ssize_t capacity = self->capacity ? 2 * self->capacity : 256;
    long long *steps = PyMem_Realloc(self->step_of, capacity * sizeof *steps);
    if (steps != NULL)
        self->step_of = steps;
    long long *epochs = steps ? PyMem_Realloc(self->epoch_of, capacity * sizeof *epochs) : NULL;
    if (epochs != NULL)
        self->epoch_of = epochs;
    double *values = epochs ? PyMem_Realloc(self->value_of, capacity * sizeof *values) : NULL;
    if (values == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    self->value_of = values;
    self->capacity = capacity;
    return 0;
}

static PyObject *
clock_step(StepClock *self, PyObject *loss)
{
    if (self->pending == self->capacity && clock_grow(self) < 0)
        return NULL;
    Py_ssize_t at = self->pending;
    if (PyFloat_CheckExact(loss)) {
        self->value_of[at] = PyFloat_AS_DOUBLE(loss);
    } else {
        PyObject *kept = PyObject_CallOneArg(self->on_loss, loss), *index = PyLong_FromSsize_t(at);
        int failed = kept == NULL || index == NULL || PyDict_SetItem(self->objects, index, kept) < 0;
        Py_XDECREF(kept);
        Py_XDECREF(index);
        if (failed)
            return NULL;
    }
    if (self->counts_steps)
        self->steps += 1;
    self->step_of[at] = self->steps;
    self->epoch_of[at] = self->epoch;
    self->pending = at + 1;
    if (self->flush_every > 0 && self->pending % self->flush_every == 0)
        return PyObject_CallNoArgs(self->on_batch);
    Py_RETURN_NONE;
}

static PyObject *STEP_KEY, *EPOCH_KEY, *LOSS_KEY;  /* a step record's keys, interned at import */

static PyObject *
step_record(long long step, long long epoch, PyObject *loss)  /* steals loss */
{
    PyObject *record = loss ? PyDict_New() : NULL, *s = NULL, *e = NULL;
    int failed = record == NULL || (s = PyLong_FromLongLong(step)) == NULL
                 || (e = PyLong_FromLongLong(epoch)) == NULL || PyDict_SetItem(record, STEP_KEY, s) < 0
                 || PyDict_SetItem(record, EPOCH_KEY, e) < 0 || PyDict_SetItem(record, LOSS_KEY, loss) < 0;
    Py_XDECREF(s);
    Py_XDECREF(e);
    Py_XDECREF(loss);
    if (failed)
        Py_CLEAR(record);
    return record;
}

/* take(): the losses not yet taken, as (records, lines): the records {"step", "epoch",
 * "loss"} (a list of dicts, made here in one go), and their steps.jsonl lines written
 * straight from the numbers — None when a loss is kept as an object or is not finite (the
 * caller formats those). None pending after. */
static PyObject *
clock_take(StepClock *self, PyObject *unused)
{
    Py_ssize_t n = self->pending;
    Text t = {NULL, 0, 0};
    int lines = PyDict_GET_SIZE(self->objects) == 0;  /* every loss a float: write the lines */
    if (lines && !reserve_text(&t, 80 * n + 1))
        return PyErr_NoMemory();
    PyObject *records = PyList_New(n);
    for (Py_ssize_t i = 0; records != NULL && i < n; i++) {
        PyObject *loss = NULL;
        if (!lines) {
            PyObject *index = PyLong_FromSsize_t(i);
            loss = index ? PyDict_GetItemWithError(self->objects, index) : NULL;
            Py_XINCREF(loss);
            Py_XDECREF(index);
            if (index == NULL || (loss == NULL && PyErr_Occurred())) {
                Py_CLEAR(records);
                break;
            }
        }
        double value = self->value_of[i];
        if (lines && !isfinite(value)) {  /* written as babysit's "nan"/"inf" by the caller */
            lines = 0;
            PyMem_Free(t.text);
            t.text = NULL;
        } else if (lines && !add_step_line(&t, self->step_of[i], self->epoch_of[i], value)) {
            PyErr_NoMemory();
            Py_CLEAR(records);
            break;
        }
        PyObject *record = step_record(self->step_of[i], self->epoch_of[i], loss ? loss : PyFloat_FromDouble(value));
        if (record == NULL)
            Py_CLEAR(records);
        else
            PyList_SET_ITEM(records, i, record);
    }
    PyObject *text = records && lines ? PyUnicode_DecodeASCII(t.text, t.used, NULL) : NULL;
    PyMem_Free(t.text);
    if (records == NULL || (lines && text == NULL)) {
        Py_XDECREF(records);
        return NULL;
    }
    self->pending = 0;
    PyDict_Clear(self->objects);
    return Py_BuildValue("(NN)", records, lines ? text : Py_NewRef(Py_None));
}

static PyObject *
clock_call(StepClock *self, PyObject *args, PyObject *kwargs)
{
    long long step = ++self->steps;
    Py_ssize_t unchanged = 0;
    PyObject *ratios = self->ratios;
    if (step < self->next_special && ratios == Py_None)
        Py_RETURN_NONE;  /* a plain step without update ratios to measure */
    if (step < self->next_special && PyList_CheckExact(ratios) && PyList_GET_SIZE(ratios) == 2
            && PyBytes_CheckExact(PyList_GET_ITEM(ratios, 0)) && PyList_CheckExact(PyList_GET_ITEM(ratios, 1))) {
        PyObject *rows = PyList_GET_ITEM(ratios, 1);
        unchanged = run_plan(PyList_GET_ITEM(ratios, 0), PyList_GET_SIZE(rows));
        if (unchanged == 0) {  /* the plain step: its row measured */
            PyObject *number = PyLong_FromLongLong(step);
            if (number == NULL)
                return NULL;
            int failed = PyList_Append(rows, number);
            Py_DECREF(number);
            if (failed)
                return NULL;
            Py_RETURN_NONE;
        }
        unchanged = unchanged > 0;  /* -1: no room for the row, which Python makes */
    }
    return PyObject_CallFunction(self->on_step, "LO", step, unchanged ? Py_True : Py_False);
}

static PyMethodDef clock_methods[] = {
    {"step", (PyCFunction)clock_step, METH_O, "step(loss): record one step's loss (see the Python twin)."},
    {"take", (PyCFunction)clock_take, METH_NOARGS,
     "take(): (records, lines) of the pending losses: {step, epoch, loss} dicts and their JSON lines\n"
     "(None unless every loss is a finite float); none pending after."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef clock_members[] = {
    {"steps", T_LONGLONG, offsetof(StepClock, steps), 0, "steps so far"},
    {"epoch", T_LONGLONG, offsetof(StepClock, epoch), 0, "the epoch the coming losses belong to"},
    {"next_special", T_LONGLONG, offsetof(StepClock, next_special), 0,
     "the first step the hook leaves to on_step"},
    {"flush_every", T_PYSSIZET, offsetof(StepClock, flush_every), 0, "on_batch() every this many losses"},
    {"counts_steps", T_BOOL, offsetof(StepClock, counts_steps), 0, "whether step() counts the steps"},
    {"pending", T_PYSSIZET, offsetof(StepClock, pending), READONLY, "losses not yet taken"},
    {"ratios", T_OBJECT_EX, offsetof(StepClock, ratios), 0, "[plan, row steps] of the update ratios, or None"},
    {"on_loss", T_OBJECT_EX, offsetof(StepClock, on_loss), 0, "on_loss(loss): the value to keep of a non-float"},
    {"on_batch", T_OBJECT_EX, offsetof(StepClock, on_batch), 0, "on_batch(): flush_every more losses"},
    {"on_step", T_OBJECT_EX, offsetof(StepClock, on_step), 0, "on_step(step, unchanged): Python's step"},
    {NULL, 0, 0, 0, NULL},
};

static PyTypeObject StepClockType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "babysit.watch._kernels.StepClock",
    .tp_basicsize = sizeof(StepClock),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_doc = "The monitor's per-step bookkeeping (see babysit.watch.clock for its Python twin).",
    .tp_new = clock_new,
    .tp_dealloc = (destructor)clock_dealloc,
    .tp_traverse = (traverseproc)clock_traverse,
    .tp_clear = (inquiry)clock_clear,
    .tp_call = (ternaryfunc)clock_call,
    .tp_methods = clock_methods,
    .tp_members = clock_members,
};

/* loss_curve(values, window): the numbers the loss-curve rules read (babysit.watch.curves'
 * loss_curve is the twin and states the maths), in one pass over a float64 array of
 * per-step losses — at a diagnosis right after training, ~20 NumPy calls cost ~0.3 ms with
 * cold caches, this ~10 us. Returns (finite, first_nonfinite, early, top, shape):
 *
 *   finite            how many losses are finite (the rest are skipped below)
 *   first_nonfinite   the index of the first NaN/Inf loss, -1 if none
 *   early, top        the median of the first min(3, finite - 1) finite losses and the
 *                     largest after the first (NaN with fewer than 2)
 *   shape             None with fewer than 10 finite losses, else (start, end, best, peak,
 *                     trend_first, mid, tenth, third_first, third_last, noise)
 *
 * The trend is np.convolve(x, ones(w), "same") / the count of values it summed, as a running
 * sum (NumPy sums each window afresh: they agree to rounding). */
static double
median_of(double *a, Py_ssize_t n)  /* sorts a */
{
    for (Py_ssize_t i = 1; i < n; i++)  /* insertion sort: short arrays (the windows' count) */
        for (Py_ssize_t j = i; j > 0 && a[j - 1] > a[j]; j--) {
            double t = a[j];
            a[j] = a[j - 1];
            a[j - 1] = t;
        }
    return n % 2 ? a[n / 2] : (a[n / 2 - 1] + a[n / 2]) / 2;
}

static PyObject *
curve_shape(const double *x, Py_ssize_t n, Py_ssize_t window, double *trend)
{
    Py_ssize_t w = n / 4 < window ? n / 4 : window;
    if (w < 3)
        w = 3;
    Py_ssize_t before = w / 2, after = (w - 1) / 2;  /* trend[i] averages x[i - before .. i + after] */
    double sum = 0.0;
    for (Py_ssize_t j = 0; j < after && j < n; j++)
        sum += x[j];
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i + after < n)
            sum += x[i + after];
        if (i - before - 1 >= 0)
            sum -= x[i - before - 1];
        Py_ssize_t lo = i - before < 0 ? 0 : i - before, hi = i + after >= n ? n - 1 : i + after;
        trend[i] = sum / (double)(hi - lo + 1);
    }
    double first5[5];
    Py_ssize_t k = n < 5 ? n : 5;
    memcpy(first5, x, k * sizeof(double));
    double start = median_of(first5, k);
    double end = 0.0, best = trend[0], peak = start;
    for (Py_ssize_t i = n - w; i < n; i++)
        end += trend[i];
    end /= (double)w;
    for (Py_ssize_t i = 0; i < n; i++)
        if (trend[i] < best)
            best = trend[i];
    for (Py_ssize_t i = k; i < n; i++)
        if (x[i] > peak)
            peak = x[i];
    Py_ssize_t third = n / 3 > 2 ? n / 3 : 2, tenth = n / 10 > 1 ? n / 10 : 1;
    /* noise: the median over the second half's whole windows of std(x - trend), over start */
    double noise = 0.0;
    Py_ssize_t half = n / 2, blocks = (n - half) / w;
    if (blocks > 0 && start > 0) {
        double *stds = PyMem_Malloc(blocks * sizeof(double));
        if (stds == NULL)
            return PyErr_NoMemory();
        for (Py_ssize_t b = 0; b < blocks; b++) {
            const Py_ssize_t at = half + b * w;
            double mean = 0.0, var = 0.0;
            for (Py_ssize_t j = at; j < at + w; j++)
                mean += x[j] - trend[j];
            mean /= (double)w;
            for (Py_ssize_t j = at; j < at + w; j++) {
                double d = x[j] - trend[j] - mean;
                var += d * d;
            }
            stds[b] = sqrt(var / (double)w);
        }
        noise = median_of(stds, blocks) / start;
        PyMem_Free(stds);
    }
    return Py_BuildValue("(dddddddddd)", start, end, best, peak, trend[0], trend[n / 2], trend[tenth],
                         trend[n - third], trend[n - 1], noise);
}

static PyObject *
loss_curve(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    Py_buffer view;
    Py_ssize_t window;
    if (nargs != 2 || ((window = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())) {
        PyErr_Clear();
        PyErr_SetString(PyExc_TypeError, "loss_curve(values: float64 array, window: int)");
        return NULL;
    }
    if (PyObject_GetBuffer(args[0], &view, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT) < 0)
        return NULL;
    if (itemsize_of(&view) != 8 || view.ndim != 1) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "loss_curve: values must be a 1-d float64 array");
        return NULL;
    }
    const double *all = (const double *)view.buf;
    Py_ssize_t n_all = view.shape[0], n = 0, first_bad = -1;
    double *x = PyMem_Malloc(2 * (n_all + 1) * sizeof(double));  /* the finite values, then the trend */
    if (x == NULL) {
        PyBuffer_Release(&view);
        return PyErr_NoMemory();
    }
    for (Py_ssize_t i = 0; i < n_all; i++) {
        if (isfinite(all[i]))
            x[n++] = all[i];
        else if (first_bad < 0)
            first_bad = i;
    }
    PyBuffer_Release(&view);
    double early = NAN, top = NAN;
    if (n >= 2) {
        double first3[3];
        Py_ssize_t k = n - 1 < 3 ? n - 1 : 3;
        memcpy(first3, x, k * sizeof(double));
        early = median_of(first3, k);
        top = x[1];
        for (Py_ssize_t i = 2; i < n; i++)
            if (x[i] > top)
                top = x[i];
    }
    PyObject *shape = n >= 10 ? curve_shape(x, n, window, x + n_all + 1) : Py_NewRef(Py_None);
    PyMem_Free(x);
    if (shape == NULL)
        return NULL;
    return Py_BuildValue("(nnddN)", n, first_bad, early, top, shape);
}

static PyMethodDef methods[] = {
    {"step_norms", (PyCFunction)(void (*)(void))step_norms, METH_FASTCALL,
     "step_norms(views, before, out, row): squared update and weight norms per tensor into\n"
     "out[row]; before := the weights; returns how many tensors did not change."},
    {"json_lines", (PyCFunction)json_lines, METH_O,
     "json_lines(records): the JSON lines of a list of plain dicts as json.dumps writes them, or None."},
    {"planned_step_norms", (PyCFunction)(void (*)(void))planned_step_norms, METH_FASTCALL,
     "planned_step_norms(plan, row): step_norms for the buffers a plan describes."},
    {"ratio_lines", (PyCFunction)(void (*)(void))ratio_lines, METH_FASTCALL,
     "ratio_lines(steps, rows): the ratios.jsonl lines of rows of ratios (6 significant digits), or None."},
    {"square_sums", (PyCFunction)(void (*)(void))square_sums, METH_FASTCALL,
     "square_sums(buffers, out): out[i] = sum of squares of buffers[i] (None: 0)."},
    {"summarize", (PyCFunction)(void (*)(void))summarize, METH_FASTCALL,
     "summarize(x, mode, bins, low, high, max_values, edge, counts, units): a layer's histogram\n"
     "and summaries in two passes; returns (low, high, saturated, positives, squares)."},
    {"loss_curve", (PyCFunction)(void (*)(void))loss_curve, METH_FASTCALL,
     "loss_curve(values, window): (finite, first_nonfinite, early, top, shape numbers or None) of\n"
     "per-step losses, for the loss-curve rules (see babysit.watch.curves.loss_curve)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_kernels",
    "The monitor's per-step work on a CPU, one call each (see _kernels.c).", -1, methods,
};

PyMODINIT_FUNC
PyInit__kernels(void)
{
    if (PyType_Ready(&StepClockType) < 0)
        return NULL;
    STEP_KEY = PyUnicode_InternFromString("step");
    EPOCH_KEY = PyUnicode_InternFromString("epoch");
    LOSS_KEY = PyUnicode_InternFromString("loss");
    if (STEP_KEY == NULL || EPOCH_KEY == NULL || LOSS_KEY == NULL)
        return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m != NULL && PyModule_AddObjectRef(m, "StepClock", (PyObject *)&StepClockType) < 0)
        Py_CLEAR(m);
    return m;
}
