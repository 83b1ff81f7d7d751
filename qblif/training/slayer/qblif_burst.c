/* Fused QB-LIF burst dynamics for training (qblif/training/slayer/fused.py).
 *
 * Quantized forward: spec section 1 / qblif/core/reference.py step() in int64 with Lava's
 * int32 casts and the single 24-bit wrap of u, the clip of v, the strict comparator.
 * Layout: z, n, gz are (B, T, M) float32 (series (b, m), time stride M). z is the synaptic
 * input in SLAYER units (a / 64). theta[m] = vth << 6 (chip units, one per neuron).
 * ku = 4096 - iDecay (= 4096 - (du + 1)), kv = 4096 - vDecay.
 *
 * Backward: the gradient autograd gives for the step-by-step quantized formulas of
 * qblif/training/slayer/neuron.py (straight-through rtz and wraps, clamp mask on v, the
 * ReLSG-ET surrogate, the reset through n and theta), recomputing the forward per sample.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef int64_t i64;
#define MAX_UV (((i64)1) << 23)
#define V_MIN (-MAX_UV + 1)
#define V_MAX (MAX_UV - 1)

static inline i64 wrap24(i64 x) {
    if (x > MAX_UV) return x - 2 * MAX_UV;
    if (x <= -MAX_UV) return x + 2 * MAX_UV;
    return x;
}

/* one step: updates u, v; returns n; *pre = v before the reset, *mask = v not clipped */
static inline int qstep(i64 *u, i64 *v, float z, i64 ku, i64 kv, i64 theta, int k, int zero,
                        i64 *pre, int *mask) {
    i64 a = (i64)llrint((double)z * 64.0);
    int32_t ash = (int32_t)((uint32_t)a << 6);
    i64 dec = (*u * ku) / 4096;                       /* C division: round toward zero */
    int32_t sum = (int32_t)((uint32_t)(int32_t)dec + (uint32_t)ash);
    *u = wrap24((i64)sum);
    i64 s = (*v * kv) / 4096 + *u;
    int in = (s >= V_MIN) && (s <= V_MAX);
    if (s < V_MIN) s = V_MIN;
    if (s > V_MAX) s = V_MAX;
    int n = 0;
    if (s > theta) {
        i64 q = (s - 1) / theta;
        n = q > k ? k : (int)q;
    }
    *pre = s;
    *mask = in;
    if (zero) *v = n > 0 ? 0 : s;
    else *v = s - (i64)n * theta;
    return n;
}

int qb_forward(const float *z, float *nout, i64 b0, i64 b1, i64 T, i64 M, const i64 *theta,
               i64 ku, i64 kv, int k, int zero) {
    i64 *u = calloc((size_t)M, sizeof(i64)), *v = calloc((size_t)M, sizeof(i64));
    if (!u || !v) { free(u); free(v); return 1; }
    for (i64 b = b0; b < b1; b++) {
        memset(u, 0, (size_t)M * sizeof(i64));
        memset(v, 0, (size_t)M * sizeof(i64));
        for (i64 t = 0; t < T; t++) {
            const float *zt = z + (b * T + t) * M;
            float *nt = nout + (b * T + t) * M;
            for (i64 m = 0; m < M; m++) {
                i64 pre; int mask;
                nt[m] = (float)qstep(&u[m], &v[m], zt[m], ku, kv, theta[m], k, zero, &pre, &mask);
            }
        }
    }
    free(u); free(v);
    return 0;
}

/* gn: (B, T, M) gradient of the counts; gz: output (B, T, M); gth: (M,) accumulated
 * dL/dtheta in chip units (only when gth != NULL). width, scale: ReLSG-ET. */
int qb_backward(const float *z, const float *gn, float *gz, double *gth, i64 b0, i64 b1, i64 T,
                i64 M, const i64 *theta, i64 ku, i64 kv, int k, int zero, double width,
                double scale) {
    i64 *u = malloc((size_t)M * sizeof(i64)), *v = malloc((size_t)M * sizeof(i64));
    i64 *pre = malloc((size_t)(T * M) * sizeof(i64));
    int *nn = malloc((size_t)(T * M) * sizeof(int)), *mk = malloc((size_t)(T * M) * sizeof(int));
    double *gr = malloc((size_t)M * sizeof(double)), *gu = malloc((size_t)M * sizeof(double));
    if (!u || !v || !pre || !nn || !mk || !gr || !gu) {
        free(u); free(v); free(pre); free(nn); free(mk); free(gr); free(gu);
        return 1;
    }
    const double keep_u = (double)ku / 4096.0, keep_v = (double)kv / 4096.0;
    for (i64 b = b0; b < b1; b++) {
        memset(u, 0, (size_t)M * sizeof(i64));
        memset(v, 0, (size_t)M * sizeof(i64));
        for (i64 t = 0; t < T; t++) {
            const float *zt = z + (b * T + t) * M;
            for (i64 m = 0; m < M; m++)
                nn[t * M + m] = qstep(&u[m], &v[m], zt[m], ku, kv, theta[m], k, zero,
                                      &pre[t * M + m], &mk[t * M + m]);
        }
        for (i64 m = 0; m < M; m++) { gr[m] = 0.0; gu[m] = 0.0; }
        for (i64 t = T - 1; t >= 0; t--) {
            const float *gnt = gn + (b * T + t) * M;
            float *gzt = gz + (b * T + t) * M;
            for (i64 m = 0; m < M; m++) {
                double th = (double)theta[m];
                double x = (double)pre[t * M + m] / th;
                double lo = x < 0 ? x : 0, hi = x > k ? x - k : 0;
                double sur = exp((lo - hi) / width) * scale;
                int n = nn[t * M + m];
                double gN = (double)gnt[m], gP;
                if (zero) {
                    gP = sur / th * gN + (n == 0 ? gr[m] : 0.0);
                } else {
                    gN -= th * gr[m];
                    gP = sur / th * gN + gr[m];
                }
                if (gth) {
                    gth[m] -= sur * x / th * gN;
                    if (!zero) gth[m] -= (double)n * gr[m];
                }
                double gs = mk[t * M + m] ? gP : 0.0;
                double g = gs + keep_u * gu[m];
                gu[m] = g;
                gzt[m] = (float)(4096.0 * g);
                gr[m] = keep_v * gs;
            }
        }
    }
    free(u); free(v); free(pre); free(nn); free(mk); free(gr); free(gu);
    return 0;
}
