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
 *   n_out: (B, T, N) uint8 (counts 0..K <= 255); u_out, v_out: (B, T, N) int32 (may be NULL);
 *   sum_out: (N,) int32 per-neuron count sums added to (may be NULL; one row per thread).
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

/* the fast variant's step for K <= 8 in one pass, in registers (gcc vectorizes it, one copy
 * per constant KC): v += x << 6 + bias, clipped; n = sum_{j <= K} [v > j*theta] by K compares
 * against theta, 2 theta, ... (j*theta <= 8 * 2^23: no overflow), the reset's n*theta summed
 * alongside (no multiplies) */
static inline __attribute__((always_inline)) void fast_step_k(
        const int KC, int64_t len, int32_t *restrict v, const int32_t *restrict x,
        const int32_t *restrict bi, const int32_t *restrict th, int subtract, int32_t *restrict n) {
    for (int64_t i = 0; i < len; i++) {
        int32_t vv = v[i] + x[i] * 64 + bi[i];
        vv = vv > V_MAX ? V_MAX : (vv < V_MIN ? V_MIN : vv);
        int32_t t = th[i], tj = t, nn = 0, sub = 0;
        for (int j = 0; j < KC; j++) {
            int32_t m = -(int32_t)(vv > tj);
            nn -= m;
            sub += m & t;
            tj += t;
        }
        n[i] = nn;
        v[i] = subtract ? vv - sub : (nn > 0 ? 0 : vv);
    }
}

static void fast_step(int64_t K, int64_t len, int32_t *v, const int32_t *x, const int32_t *bi,
                      const int32_t *th, int subtract, int32_t *n) {
    switch (K) {
    case 0: fast_step_k(0, len, v, x, bi, th, subtract, n); break;
    case 1: fast_step_k(1, len, v, x, bi, th, subtract, n); break;
    case 2: fast_step_k(2, len, v, x, bi, th, subtract, n); break;
    case 3: fast_step_k(3, len, v, x, bi, th, subtract, n); break;
    case 4: fast_step_k(4, len, v, x, bi, th, subtract, n); break;
    case 5: fast_step_k(5, len, v, x, bi, th, subtract, n); break;
    case 6: fast_step_k(6, len, v, x, bi, th, subtract, n); break;
    case 7: fast_step_k(7, len, v, x, bi, th, subtract, n); break;
    default: fast_step_k(8, len, v, x, bi, th, subtract, n); break;
    }
}

/* one step of the fast QB-LIF (du = 4095, dv = 0) for len neurons: v += 64 x + bias (clipped
 * to 24 bits), n = min(K, (v - 1) // theta) where v > theta, then the reset; K <= 8 takes the
 * vectorized fast_step, larger K the staged loops */
static inline void neuron_step(int64_t K, int64_t len, int32_t *v, const int32_t *x,
                               const int32_t *bi, const int32_t *th, int subtract, int32_t *n) {
    if (K <= 8) {
        fast_step(K, len, v, x, bi, th, subtract, n);
        return;
    }
    for (int64_t i = 0; i < len; i++) {
        int32_t vv = v[i] + x[i] * 64 + bi[i];
        v[i] = vv > V_MAX ? V_MAX : (vv < V_MIN ? V_MIN : vv);
    }
    for (int64_t i = 0; i < len; i++) {
        int32_t q = v[i] > th[i] ? (v[i] - 1) / th[i] : 0;
        n[i] = q > K ? (int32_t)K : q;
    }
    if (subtract) for (int64_t i = 0; i < len; i++) v[i] -= n[i] * th[i];
    else for (int64_t i = 0; i < len; i++) v[i] = n[i] > 0 ? 0 : v[i];
}

/* one (b, block) of the fast variant: |a| < 2^17, |bias| < 2^24, du = 4095, dv = 0, so
 * u = a << 6 (no wrap), |v + u + bias| < 2^31: int32 throughout, staged loops gcc vectorizes */
static void fast_block(const void *a, int a_dtype, int a_static, int64_t b, int64_t T,
                       int64_t N, int64_t i0, int64_t len, const int32_t *theta, int64_t theta_n,
                       const int32_t *bias, int64_t bias_n, int64_t K, int subtract,
                       uint8_t *n_out, int32_t *u_out, int32_t *v_out, int32_t *sum_out,
                       const pool_src *ps) {
    int32_t v[BLOCK], x[BLOCK], n[BLOCK], th[BLOCK], bi[BLOCK], sums[BLOCK];
    for (int64_t i = 0; i < len; i++) {
        v[i] = 0;
        sums[i] = 0;
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
        neuron_step(K, len, v, x, bi, th, subtract, n);
        uint8_t *o = n_out + orow;
        for (int64_t i = 0; i < len; i++) o[i] = (uint8_t)n[i];
        if (u_out) {
            for (int64_t i = 0; i < len; i++) { u_out[orow + i] = x[i] * 64; v_out[orow + i] = v[i]; }
        }
        if (sum_out) for (int64_t i = 0; i < len; i++) sums[i] += n[i];
    }
    if (sum_out) for (int64_t i = 0; i < len; i++) sum_out[i0 + i] += sums[i];
}

int qblif_scan(const void *a, int a_dtype, int a_static, int in_wrap, int fast,
               int64_t B, int64_t T, int64_t N,
               int64_t cu, int64_t cv, const int32_t *theta, int64_t theta_n,
               const int32_t *bias, int64_t bias_n, int64_t K, int subtract,
               uint8_t *n_out, int32_t *u_out, int32_t *v_out, int32_t *sum_out,
               int64_t b0, int64_t b1, const void *px, int px_dtype, int64_t H, int64_t W,
               int64_t C, int64_t kh,
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
                           bias_n, K, subtract, n_out, u_out, v_out, sum_out, ps);
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
                    if (sum_out) sum_out[i] += (int32_t)n;
                    if (u_out) { u_out[orow + i] = (int32_t)uu; v_out[orow + i] = (int32_t)v[i - i0]; }
                }
            }
        }
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------
 * conv_scan: a synaptic layer over sparse integer input fused with the fast QB-LIF variant.
 *
 * The synapse is a convolution (groups = 1) of channels-last frames x (H, W, C) into
 * (OH, OW, CO); a dense layer is the 1x1 convolution of a 1x1 frame of C = fan-in channels.
 * x: (B, S, H, W, C), S = 1 if x_static (the same frame on every step) else S >= T, samples
 * x_bstride elements apart; dtype 0 int32, 4 uint8. w: float32 (KH*KW*C, CO), rows tap-major,
 * channel-minor (the engine's im2col order), holding integer weights. Per frame the kernel lists
 * each input pixel's non-zero channels once, then sums, for every output pixel and tile of
 * output channels, value * weight row over the listed inputs of its taps (in registers); the
 * caller proved sum |w| * max|x| < 2^17, so every float32 partial sum is an exact integer,
 * there is no synaptic wrap and the fast neuron variant applies (du = 4095, dv = 0,
 * |bias| < 2^24; see fast_block). A QB-LIF spike count 0..K input is sparse (a few non-zero
 * channels per pixel), so this does a fraction of a dense GEMM's multiply-adds and never
 * writes the synaptic sums out.
 * Outputs as qblif_scan: n_out (B, T, OH, OW, CO) uint8, u_out / v_out int32 (may be NULL);
 * sum_out (may be NULL): per-neuron count sums (OH*OW*CO) int32 added to (the caller gives
 * each thread its own row). Samples b0 .. b1-1. Returns -1 where memory runs out.
 * ------------------------------------------------------------------------------------------- */
#include <stdlib.h>
#include <string.h>

/* the float sums are of integers below 2^24: exact in any order, fused or not */
#pragma GCC optimize ("fp-contract=fast")
typedef float v8f __attribute__((vector_size(32)));

static inline v8f ld8(const float *p) { v8f r; memcpy(&r, p, sizeof r); return r; }

/* value * row summed over the listed inputs of the taps of one output pixel, nv (constant)
 * vectors of 8 output channels from column j0: added to the float sums f[0 .. 8*nv-1] (in and
 * out: the accumulators stay in registers over the taps' inputs) */
static inline __attribute__((always_inline)) void tile_sums(
        int nv, const float *w, int64_t CO, int64_t j0, int ntaps, const int64_t *tap_pix,
        const int64_t *tap_row, const int32_t *cnt, const int32_t *idx, const float *val,
        int64_t C, float *f) {
    v8f acc[8];
    for (int r = 0; r < nv; r++) acc[r] = ld8(f + 8 * r);
    for (int q = 0; q < ntaps; q++) {
        int64_t p = tap_pix[q];
        const float *wt = w + tap_row[q] * C * CO + j0;
        const int32_t *ix = idx + p * C;
        const float *vl = val + p * C;
        for (int32_t k = 0; k < cnt[p]; k++) {
            const float *row = wt + (int64_t)ix[k] * CO;
            v8f s = (v8f){vl[k], vl[k], vl[k], vl[k], vl[k], vl[k], vl[k], vl[k]};
            for (int r = 0; r < nv; r++) acc[r] += s * ld8(row + 8 * r);
        }
    }
    for (int r = 0; r < nv; r++) memcpy(f + 8 * r, &acc[r], sizeof acc[r]);
}

/* the same for fewer than 8 remaining channels (scalar) */
static void tail_sums(int64_t width, const float *w, int64_t CO, int64_t j0, int ntaps,
                      const int64_t *tap_pix, const int64_t *tap_row, const int32_t *cnt,
                      const int32_t *idx, const float *val, int64_t C, float *f) {
    for (int q = 0; q < ntaps; q++) {
        int64_t p = tap_pix[q];
        const float *wt = w + tap_row[q] * C * CO + j0;
        for (int32_t k = 0; k < cnt[p]; k++) {
            const float *row = wt + (int64_t)idx[p * C + k] * CO;
            float s = val[p * C + k];
            for (int64_t j = 0; j < width; j++) f[j] += s * row[j];
        }
    }
}

/* tile_sums over all CO output channels of one pixel (f: its CO float sums) */
static void pixel_sums(const float *w, int64_t CO, int ntaps, const int64_t *tap_pix,
                       const int64_t *tap_row, const int32_t *cnt, const int32_t *idx,
                       const float *val, int64_t C, float *f) {
    int64_t j0 = 0;
    for (; j0 + 64 <= CO; j0 += 64)
        tile_sums(8, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0);
    switch ((CO - j0) / 8) {
    case 7: tile_sums(7, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    case 6: tile_sums(6, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    case 5: tile_sums(5, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    case 4: tile_sums(4, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    case 3: tile_sums(3, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    case 2: tile_sums(2, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    case 1: tile_sums(1, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0); break;
    default: break;
    }
    j0 += (CO - j0) / 8 * 8;
    if (j0 < CO)
        tail_sums(CO - j0, w, CO, j0, ntaps, tap_pix, tap_row, cnt, idx, val, C, f + j0);
}

/* the neuron's T steps of neurons i0 .. i0+len-1 (len <= BLOCK) of sample b from the sums
 * a (S, N), S = 1 (the same on every step) or T; staged loops gcc vectorizes (as fast_block) */
static void neuron_block(const int32_t *a, int a_static, int64_t b, int64_t T, int64_t N,
                         int64_t i0, int64_t len, const int32_t *th, const int32_t *bi, int64_t K,
                         int subtract, uint8_t *n_out, int32_t *u_out, int32_t *v_out,
                         int32_t *sum_out) {
    int32_t v[BLOCK], n[BLOCK], sums[BLOCK];
    for (int64_t i = 0; i < len; i++) { v[i] = 0; sums[i] = 0; }
    th += i0; bi += i0;
    for (int64_t t = 0; t < T; t++) {
        const int32_t *x = a + (a_static ? 0 : t * N) + i0;
        size_t orow = (size_t)((b * T + t) * N + i0);
        neuron_step(K, len, v, x, bi, th, subtract, n);
        uint8_t *o = n_out + orow;
        for (int64_t i = 0; i < len; i++) o[i] = (uint8_t)n[i];
        if (u_out)
            for (int64_t i = 0; i < len; i++) { u_out[orow + i] = x[i] * 64; v_out[orow + i] = v[i]; }
        if (sum_out) for (int64_t i = 0; i < len; i++) sums[i] += n[i];
    }
    if (sum_out) for (int64_t i = 0; i < len; i++) sum_out[i0 + i] += sums[i];
}

int conv_scan(const void *x, int x_dtype, int x_static, int64_t x_bstride,
              int64_t H, int64_t W, int64_t C, int64_t KH, int64_t KW, int64_t SH, int64_t SW,
              int64_t PH, int64_t PW, int64_t DH, int64_t DW, int64_t OH, int64_t OW,
              int64_t CO, const float *w, int64_t T,
              const int32_t *theta, int64_t theta_n, const int32_t *bias, int64_t bias_n,
              int64_t K, int subtract, uint8_t *n_out, int32_t *u_out, int32_t *v_out,
              int32_t *sum_out, int64_t b0, int64_t b1) {
    int64_t HW = H * W, N = OH * OW * CO, frame = HW * C, S = x_static ? 1 : T;
    int32_t *cnt = malloc(sizeof(int32_t) * (size_t)HW);
    int32_t *idx = malloc(sizeof(int32_t) * (size_t)frame);
    float *val = malloc(sizeof(float) * (size_t)frame);
    int32_t *a = malloc(sizeof(int32_t) * (size_t)(N * S));
    float *f = malloc(sizeof(float) * (size_t)N);
    int32_t *th = malloc(sizeof(int32_t) * (size_t)N);
    int32_t *bi = malloc(sizeof(int32_t) * (size_t)N);
    int64_t tap_pix[64], tap_row[64];
    int rc = 0;
    if (!cnt || !idx || !val || !a || !f || !th || !bi || KH * KW > 64) { rc = -1; goto done; }
    for (int64_t i = 0; i < N; i++) {
        th[i] = theta[theta_n == 1 ? 0 : i];
        bi[i] = bias[bias_n == 1 ? 0 : i];
    }
    for (int64_t b = b0; b < b1; b++) {
        for (int64_t t = 0; t < S; t++) {
            /* the frame's non-zero inputs, per pixel (branch-free: spike counts are random) */
            size_t base = (size_t)b * (size_t)x_bstride + (size_t)t * (size_t)frame;
            for (int64_t p = 0; p < HW; p++) {
                int32_t k = 0;
                if (x_dtype == 4) {
                    const uint8_t *X = (const uint8_t *)x + base + (size_t)(p * C);
                    for (int64_t c = 0; c < C; c++) {
                        idx[p * C + k] = (int32_t)c; val[p * C + k] = (float)X[c]; k += X[c] != 0;
                    }
                } else {
                    const int32_t *X = (const int32_t *)x + base + (size_t)(p * C);
                    for (int64_t c = 0; c < C; c++) {
                        idx[p * C + k] = (int32_t)c; val[p * C + k] = (float)X[c]; k += X[c] != 0;
                    }
                }
                cnt[p] = k;
            }
            /* every output pixel's sums, a[t] (OH, OW, CO), in the float sums f first */
            memset(f, 0, sizeof(float) * (size_t)N);
            if (C >= 8 && KH * KW > 1) {
                /* many input channels: tap by tap, so that a tap's weights (C x CO) stay in L1;
                 * a pixel's sums go through memory once per tap */
                for (int64_t i = 0; i < KH; i++)
                    for (int64_t j = 0; j < KW; j++)
                        for (int64_t oh = 0; oh < OH; oh++)
                            for (int64_t ow = 0; ow < OW; ow++) {
                                int64_t ih = oh * SH - PH + i * DH, iw = ow * SW - PW + j * DW;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                tap_pix[0] = ih * W + iw;
                                if (!cnt[tap_pix[0]]) continue;
                                tap_row[0] = i * KW + j;
                                pixel_sums(w, CO, 1, tap_pix, tap_row, cnt, idx, val, C,
                                           f + (oh * OW + ow) * CO);
                            }
            } else {
                /* few: pixel by pixel, all its taps at once */
                for (int64_t oh = 0; oh < OH; oh++)
                    for (int64_t ow = 0; ow < OW; ow++) {
                        int ntaps = 0;
                        for (int64_t i = 0; i < KH; i++)
                            for (int64_t j = 0; j < KW; j++) {
                                int64_t ih = oh * SH - PH + i * DH, iw = ow * SW - PW + j * DW;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                tap_pix[ntaps] = ih * W + iw;
                                tap_row[ntaps++] = i * KW + j;
                            }
                        pixel_sums(w, CO, ntaps, tap_pix, tap_row, cnt, idx, val, C,
                                   f + (oh * OW + ow) * CO);
                    }
            }
            for (int64_t i = 0; i < N; i++) a[t * N + i] = (int32_t)f[i];
        }
        for (int64_t i0 = 0; i0 < N; i0 += BLOCK)
            neuron_block(a, x_static, b, T, N, i0, N - i0 < BLOCK ? N - i0 : BLOCK, th, bi, K,
                         subtract, n_out, u_out, v_out, sum_out);
    }
done:
    free(cnt); free(idx); free(val); free(a); free(f); free(th); free(bi);
    return rc;
}
