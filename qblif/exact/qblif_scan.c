/* QB-LIF fixed-point scan over T steps for a batch (spec section 1), one pass over memory.
 *
 * Mirrors qblif_lava/reference.py operation by operation in int64 with the same int32 casts
 * (wrap32) and the single 24-bit wrap of u, so it is exact for any int32 input. Built and
 * loaded by compiler/engine/native.py (gcc -O3); the torch code in exact.py is the
 * fallback and the CUDA path.
 *
 * px (optional): pooling fused into the fast variant (see pool_src): the input is then the
 * pooled counts px (M, H, W, C), M = B*T (B if a_static), and a is unused.
 * Samples b0 .. b1-1 of the batch (the caller runs ranges on its threads; no OpenMP, whose
 * runtime would compete with torch's).
 * a:      synaptic input, (B, T, N) or, with a_static, (B, N); dtype a_dtype (0 int32,
 *         1 float32, 2 float64, 3 int64; float values are integers); first wrapped as the
 *         synapse does: in_wrap 24 (Lava Conv's signed 24 bits), 32 (int32, Lava Dense), 0.
 * theta:  vth << 6 per neuron (N,) int32, or a scalar when theta_n == 1; bias likewise.
 * cu:     4096 - (du + 1); cv: 4096 - dv.  fast: the caller proved |a| < 2^17 and |bias| < 2^24
 *         (the fast variant then runs where du = 4095 and dv = 0).
 *   n_out: (B, T, N) uint8 (counts 0..K <= 255); u_out, v_out: (B, T, N) int32 (may be NULL).
 */
#include <stdint.h>
#include <stddef.h>

#define MAX_UV (1LL << 23)
#define V_MAX (MAX_UV - 1)
#define V_MIN (-MAX_UV + 1)
#define BLOCK 1024

static inline int64_t wrap32(int64_t x) { return (int64_t)(int32_t)(uint32_t)(uint64_t)x; }
static inline int64_t clamp24(int64_t x) { return ((x + MAX_UV) & 0xFFFFFF) - MAX_UV; }

static inline int64_t load(const void *a, int dtype, size_t k) {
    switch (dtype) {
    case 0: return ((const int32_t *)a)[k];
    case 1: return (int64_t)((const float *)a)[k];
    case 2: return (int64_t)((const double *)a)[k];
    default: return ((const int64_t *)a)[k];
    }
}

/* A pooling synapse computed on the fly (the fast variant only): a uniform kernel of weight w,
 * stride = kernel, no padding, dilation 1, over counts x (M, H, W, C) (uint8 or int32),
 * channels-last; the output (OH, OW, C) is the population. */
typedef struct {
    const void *x;
    int dtype;                      /* 0 int32, 4 uint8 */
    int64_t H, W, C, kh, kw, OW;
    int32_t w;
} pool_src;

/* the pooled input of frame m for population indices i0 .. i0+len-1 into x[0 .. len-1] */
static void pool_load(const pool_src *ps, int64_t m, int64_t i0, int64_t len, int32_t *x) {
    int64_t C = ps->C, i = 0;
    int64_t c = i0 % C, p = i0 / C, ow = p % ps->OW, oh = p / ps->OW;
    size_t frame = (size_t)m * (size_t)(ps->H * ps->W * C);
    while (i < len) {
        int64_t seg = C - c < len - i ? C - c : len - i;     /* channels of one pixel */
        for (int64_t j = 0; j < seg; j++) x[i + j] = 0;
        for (int64_t a = 0; a < ps->kh; a++)
            for (int64_t b = 0; b < ps->kw; b++) {
                size_t base = frame + ((size_t)(oh * ps->kh + a) * (size_t)ps->W
                                       + (size_t)(ow * ps->kw + b)) * (size_t)C + (size_t)c;
                if (ps->dtype == 4) {
                    const uint8_t *X = (const uint8_t *)ps->x + base;
                    for (int64_t j = 0; j < seg; j++) x[i + j] += X[j];
                } else {
                    const int32_t *X = (const int32_t *)ps->x + base;
                    for (int64_t j = 0; j < seg; j++) x[i + j] += X[j];
                }
            }
        for (int64_t j = 0; j < seg; j++) x[i + j] *= ps->w;
        i += seg;
        c = 0;
        if (++ow == ps->OW) { ow = 0; oh++; }
    }
}

/* one (b, block) of the fast variant: |a| < 2^17, |bias| < 2^24, du = 4095, dv = 0, so
 * u = a << 6 (no wrap), |v + u + bias| < 2^31: int32 throughout, staged loops gcc vectorizes */
static void fast_block(const void *a, int a_dtype, int a_static, int64_t b, int64_t T,
                       int64_t N, int64_t i0, int64_t len, const int32_t *theta, int64_t theta_n,
                       const int32_t *bias, int64_t bias_n, int64_t K, int subtract,
                       uint8_t *n_out, int32_t *u_out, int32_t *v_out, const pool_src *ps) {
    int32_t v[BLOCK], x[BLOCK], n[BLOCK], th[BLOCK], bi[BLOCK];
    for (int64_t i = 0; i < len; i++) {
        v[i] = 0;
        th[i] = theta[theta_n == 1 ? 0 : i0 + i];
        bi[i] = bias[bias_n == 1 ? 0 : i0 + i];
    }
    for (int64_t t = 0; t < T; t++) {
        size_t arow = (a_static ? (size_t)(b * N) : (size_t)((b * T + t) * N)) + i0;
        size_t orow = (size_t)((b * T + t) * N) + i0;
        if (ps) pool_load(ps, a_static ? b : b * T + t, i0, len, x);
        else if (a_dtype == 0) { const int32_t *p = (const int32_t *)a + arow; for (int64_t i = 0; i < len; i++) x[i] = p[i]; }
        else if (a_dtype == 1) { const float *p = (const float *)a + arow; for (int64_t i = 0; i < len; i++) x[i] = (int32_t)p[i]; }
        else if (a_dtype == 2) { const double *p = (const double *)a + arow; for (int64_t i = 0; i < len; i++) x[i] = (int32_t)p[i]; }
        else { const int64_t *p = (const int64_t *)a + arow; for (int64_t i = 0; i < len; i++) x[i] = (int32_t)p[i]; }
        for (int64_t i = 0; i < len; i++) {
            int32_t vv = v[i] + x[i] * 64 + bi[i];
            v[i] = vv > V_MAX ? V_MAX : (vv < V_MIN ? V_MIN : vv);
        }
        if (K <= 8) {          /* n = sum_j [v > j*theta]; j*theta <= 8 * 2^23 */
            for (int64_t i = 0; i < len; i++) n[i] = 0;
            for (int32_t j = 1; j <= K; j++)
                for (int64_t i = 0; i < len; i++) n[i] += v[i] > j * th[i];
        } else {
            for (int64_t i = 0; i < len; i++) {
                int32_t q = v[i] > th[i] ? (v[i] - 1) / th[i] : 0;
                n[i] = q > K ? (int32_t)K : q;
            }
        }
        if (subtract) for (int64_t i = 0; i < len; i++) v[i] -= n[i] * th[i];
        else for (int64_t i = 0; i < len; i++) v[i] = n[i] > 0 ? 0 : v[i];
        uint8_t *o = n_out + orow;
        for (int64_t i = 0; i < len; i++) o[i] = (uint8_t)n[i];
        if (u_out) {
            for (int64_t i = 0; i < len; i++) { u_out[orow + i] = x[i] * 64; v_out[orow + i] = v[i]; }
        }
    }
}

int qblif_scan(const void *a, int a_dtype, int a_static, int in_wrap, int fast,
               int64_t B, int64_t T, int64_t N,
               int64_t cu, int64_t cv, const int32_t *theta, int64_t theta_n,
               const int32_t *bias, int64_t bias_n, int64_t K, int subtract,
               uint8_t *n_out, int32_t *u_out, int32_t *v_out, int64_t b0, int64_t b1,
               const void *px, int px_dtype, int64_t H, int64_t W, int64_t C, int64_t kh,
               int64_t kw, int64_t OW, int32_t pw) {
    int64_t nblocks = (N + BLOCK - 1) / BLOCK;
    fast = fast && cu == 0 && cv == 4096;
    pool_src pool = {px, px_dtype, H, W, C, kh, kw, OW, pw};
    const pool_src *ps = px ? &pool : NULL;
    if (ps && !fast) return -1;     /* pooling is fused into the fast variant only */
    for (int64_t b = b0; b < b1; b++) {
        for (int64_t blk = 0; blk < nblocks; blk++) {
            int64_t i0 = blk * BLOCK, i1 = i0 + BLOCK < N ? i0 + BLOCK : N;
            if (fast) {
                fast_block(a, a_dtype, a_static, b, T, N, i0, i1 - i0, theta, theta_n, bias,
                           bias_n, K, subtract, n_out, u_out, v_out, ps);
                continue;
            }
            int64_t u[BLOCK], v[BLOCK];
            for (int64_t i = i0; i < i1; i++) { u[i - i0] = 0; v[i - i0] = 0; }
            for (int64_t t = 0; t < T; t++) {
                size_t arow = a_static ? (size_t)(b * N) : (size_t)((b * T + t) * N);
                size_t orow = (size_t)((b * T + t) * N);
                for (int64_t i = i0; i < i1; i++) {
                    int64_t x = load(a, a_dtype, arow + i);
                    if (in_wrap == 24) x = clamp24(x);
                    else if (in_wrap == 32) x = wrap32(x);
                    int64_t th = theta[theta_n == 1 ? 0 : i];
                    int64_t bi = bias[bias_n == 1 ? 0 : i];
                    /* u = wrap24(int32(rtz(u * cu, 12)) + int32(a << 6)), in int32 */
                    int64_t tot = wrap32(wrap32((u[i - i0] * cu) / 4096) + wrap32(x * 64));
                    int64_t w = tot > MAX_UV ? tot - 2 * MAX_UV : tot;
                    int64_t uu = w <= -MAX_UV ? tot + 2 * MAX_UV : w;
                    /* v = clip(int32(rtz(v * cv, 12)) + u + bias) */
                    int64_t vv = wrap32(wrap32((v[i - i0] * cv) / 4096) + uu + bi);
                    vv = vv > V_MAX ? V_MAX : (vv < V_MIN ? V_MIN : vv);
                    /* n = 0 if v <= theta else min(K, (v - 1) // theta) */
                    int64_t n = 0;
                    if (vv > th) { n = (vv - 1) / th; if (n > K) n = K; }
                    v[i - i0] = subtract ? vv - n * th : (n > 0 ? 0 : vv);
                    u[i - i0] = uu;
                    n_out[orow + i] = (uint8_t)n;
                    if (u_out) { u_out[orow + i] = (int32_t)uu; v_out[orow + i] = (int32_t)v[i - i0]; }
                }
            }
        }
    }
    return 0;
}
