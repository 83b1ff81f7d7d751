/* QB-LIF fixed-point scan over T steps for a batch (spec section 1), one pass over memory.
 *
 * Mirrors qblif_lava/reference.py operation by operation in int64 with the same int32 casts
 * (wrap32) and the single 24-bit wrap of u, so it is exact for any int32 input. Built and
 * loaded by compiler/engine/native.py (gcc -O3 -fopenmp); the torch code in exact.py is the
 * fallback and the CUDA path.
 *
 * a:      synaptic input, (B, T, N) or, with a_static, (B, N); dtype a_dtype (0 int32,
 *         1 float32, 2 float64, 3 int64; float values are integers); first wrapped as the
 *         synapse does: in_wrap 24 (Lava Conv's signed 24 bits), 32 (int32, Lava Dense), 0.
 * theta:  vth << 6 per neuron (N,) int32, or a scalar when theta_n == 1; bias likewise.
 * cu:     4096 - (du + 1); cv: 4096 - dv.   n_out, u_out, v_out: (B, T, N) int32 (u, v may be NULL).
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

int qblif_scan(const void *a, int a_dtype, int a_static, int in_wrap,
               int64_t B, int64_t T, int64_t N,
               int64_t cu, int64_t cv, const int32_t *theta, int64_t theta_n,
               const int32_t *bias, int64_t bias_n, int64_t K, int subtract,
               int32_t *n_out, int32_t *u_out, int32_t *v_out, int nthreads) {
    int64_t nblocks = (N + BLOCK - 1) / BLOCK;
    #pragma omp parallel for collapse(2) schedule(static) num_threads(nthreads)
    for (int64_t b = 0; b < B; b++) {
        for (int64_t blk = 0; blk < nblocks; blk++) {
            int64_t i0 = blk * BLOCK, i1 = i0 + BLOCK < N ? i0 + BLOCK : N;
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
                    n_out[orow + i] = (int32_t)n;
                    if (u_out) { u_out[orow + i] = (int32_t)uu; v_out[orow + i] = (int32_t)v[i - i0]; }
                }
            }
        }
    }
    return 0;
}
