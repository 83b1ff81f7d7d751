/* Fused QB-LIF burst dynamics for training (qblif/training/slayer/fused.py).
 *
 * Quantized forward: spec section 1 / qblif/core/reference.py step(), bit for bit. The
 * states are integers held in doubles (|u * ku| < 2^43: every product, the division by 4096
 * and the truncation are exact), so the loop over neurons vectorises: rtz is trunc(x / 4096),
 * Lava's int32 wrap of u + (a << 6) is a subtraction of 2^32 * floor((x + 2^31) / 2^32), then
 * the single 24-bit wrap of u, the clip of v, the strict comparator n = 0 if v <= theta else
 * min(K, floor((v - 1) / theta)) (exact in double for 24-bit operands, as reference.py notes).
 *
 * Layout: z, n, gn, gz are (B, T, M) float32 (series (b, m), time stride M). z is the synaptic
 * input in SLAYER units (a / 64). theta[m] = vth << 6 (chip units, one per neuron).
 * ku = 4096 - iDecay (= 4096 - (du + 1)), kv = 4096 - vDecay.
 *
 * Backward: the gradient autograd gives for the step-by-step quantized formulas of
 * qblif/training/slayer/neuron.py (straight-through rtz and wraps, clamp mask on v, the
 * ReLSG-ET surrogate, the reset through n and theta), from the forward's records of n and of
 * v before the reset.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#if defined(QBLIF_MVEC)
/* glibc's vector exp (libmvec, within 4 ulp): lets the backward loop vectorise */
double exp(double) __attribute__((__simd__("notinbranch")));
#endif

typedef int64_t i64;
#define MAX_UV 8388608.0            /* 2^23 */
#define V_MIN (-MAX_UV + 1.0)
#define V_MAX (MAX_UV - 1.0)
#define TWO31 2147483648.0
#define TWO32 4294967296.0

/* one step over M neurons: u, v updated; n; pre: v before the reset and the clip, in float32
 * (exact inside the clip's range [-(2^23 - 1), 2^23 - 1], rounded monotonically outside it, so
 * both the clip and its gradient mask are recovered exactly) */
static void qsteps(i64 M, double *restrict u, double *restrict v, const float *restrict z,
                   const double *restrict theta, double ku, double kv, double k, int zero,
                   float *restrict n, float *restrict pre) {
    for (i64 m = 0; m < M; m++) {
        double ash = nearbyint((double)z[m] * 64.0) * 64.0;            /* a << 6 */
        double x = trunc(u[m] * ku / 4096.0) + ash;
        x -= TWO32 * floor((x + TWO31) / TWO32);                        /* int32 wrap */
        double w = x > MAX_UV ? x - 2 * MAX_UV : x;
        u[m] = w <= -MAX_UV ? x + 2 * MAX_UV : w;                       /* 24-bit wrap */
        double s = trunc(v[m] * kv / 4096.0) + u[m];
        double c = s < V_MIN ? V_MIN : (s > V_MAX ? V_MAX : s);
        double th = theta[m];
        double q = floor((c - 1.0) / th);
        q = q > k ? k : q;
        double cnt = c > th ? q : 0.0;
        n[m] = (float)cnt;
        pre[m] = (float)s;
        v[m] = zero ? (cnt > 0 ? 0.0 : c) : c - cnt * th;
    }
}

/* pre: the (B, T, M) record of v before the reset for the backward, or NULL */
int qb_forward(const float *z, float *nout, float *pre, i64 b0, i64 b1, i64 T, i64 M,
               const double *theta, double ku, double kv, int k, int zero) {
    double *u = malloc((size_t)M * sizeof(double)), *v = malloc((size_t)M * sizeof(double));
    float *scratch = malloc((size_t)M * sizeof(float));
    if (!u || !v || !scratch) { free(u); free(v); free(scratch); return 1; }
    for (i64 b = b0; b < b1; b++) {
        memset(u, 0, (size_t)M * sizeof(double));
        memset(v, 0, (size_t)M * sizeof(double));
        for (i64 t = 0; t < T; t++)
            qsteps(M, u, v, z + (b * T + t) * M, theta, ku, kv, (double)k, zero,
                   nout + (b * T + t) * M, pre ? pre + (b * T + t) * M : scratch);
    }
    free(u); free(v); free(scratch);
    return 0;
}

/* pre, n: the forward's (B, T, M) records; gn: (B, T, M) gradient of the counts; gz: output
 * (B, T, M); gth: (M,) accumulated dL/dtheta in chip units. width, scale: ReLSG-ET. */
int qb_backward(const float *pre, const float *nn, const float *gn, float *gz, double *gth,
                i64 b0, i64 b1, i64 T, i64 M, const double *theta, double ku, double kv, int k,
                int zero, double width, double scale) {
    double *gr = malloc((size_t)M * sizeof(double)), *gu = malloc((size_t)M * sizeof(double));
    if (!gr || !gu) { free(gr); free(gu); return 1; }
    const double keep_u = ku / 4096.0, keep_v = kv / 4096.0, kk = (double)k;
    for (i64 b = b0; b < b1; b++) {
        memset(gr, 0, (size_t)M * sizeof(double));
        memset(gu, 0, (size_t)M * sizeof(double));
        for (i64 t = T - 1; t >= 0; t--) {
            i64 off = (b * T + t) * M;
            const float *gnt = gn + off, *pt = pre + off, *nt = nn + off;
            float *gzt = gz + off;
            for (i64 m = 0; m < M; m++) {
                double th = theta[m];
                double p = (double)pt[m];
                double c = p > V_MAX ? V_MAX : (p < V_MIN ? V_MIN : p);
                double x = c / th;
                double arg = ((x < 0 ? x : 0) - (x > kk ? x - kk : 0)) / width;
                double sur = exp(arg) * scale;
                double n = (double)nt[m];
                double gN = (double)gnt[m] - (zero ? 0.0 : th * gr[m]);
                double gP = sur / th * gN + (zero ? (n == 0 ? gr[m] : 0.0) : gr[m]);
                gth[m] -= sur * x / th * gN + (zero ? 0.0 : n * gr[m]);
                double gs = (p <= V_MAX && p >= V_MIN) ? gP : 0.0;
                double g = gs + keep_u * gu[m];
                gu[m] = g;
                gzt[m] = (float)(4096.0 * g);
                gr[m] = keep_v * gs;
            }
        }
    }
    free(gr); free(gu);
    return 0;
}
