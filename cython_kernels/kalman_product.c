/* Products X += P H over a stored triangle / rectangle of the Kalman
 * covariance P for m observations at once (hpcnnp.training.kalman).
 *
 * P is stored column-major with leading dimension lda (an N x n_r block of
 * rows of the full N x N matrix).  H and X are row-major n x m arrays, so the
 * m values belonging to one weight are contiguous.  Every stored element of P
 * is read from memory exactly once for all m columns; the update is bound by
 * memory bandwidth over P, so m observations cost about as much as one.
 * (OpenBLAS dsymm/dgemm pack their operands and are several times slower
 * than this for m <= 8; m calls of dsymv read P m times.)
 *
 * Blocking: rows in blocks (row_block()) so that the H and X rows of a block stay
 * in L1/L2 while all columns stream past; within a row block, columns in
 * groups of four (four column streams of P at once).  m > 8 (one observation
 * per rank of a node): a row block's columns in tiles that stay in L2 while
 * the observations pass over them eight at a time (rect_block()).
 */
#include <stdint.h>

#include "kalman_product.h"

#ifndef KP_CACHE_DOUBLES
#define KP_CACHE_DOUBLES 32768
#endif

/* rows per block: the block's H and X rows (2 * rows * m doubles) take
 * about 256 KiB, so they stay in L2 while the columns of P stream past in
 * long contiguous segments (short segments leave the prefetchers idle). */
static int64_t row_block(int m)
{
    int64_t ib = (KP_CACHE_DOUBLES / 2) / (m > 0 ? m : 1);
    return ib < 64 ? 64 : ib;
}

/* One row block (rows [0, ib)) times columns [0, q) for M of the m columns of
 * H and X (row stride ld >= M):
 *   Xi[i] += A[i, j] Hj[j],   Xj[j] += A[i, j] Hi[i].
 * Four columns at a time with register accumulators: the sums over i are
 * four independent chains (a single chain would be bound by FMA latency),
 * and each X row is loaded and stored once for four elements of P. */
#define KP_RECT_BODY(M)                                                       \
    int64_t j0 = 0;                                                           \
    for (; j0 + 4 <= q; j0 += 4) {                                            \
        const double *c0 = A + j0 * lda, *c1 = c0 + lda;                      \
        const double *c2 = c1 + lda, *c3 = c2 + lda;                          \
        double h0[M], h1[M], h2[M], h3[M];                                    \
        double s0[M], s1[M], s2[M], s3[M];                                    \
        for (int c = 0; c < (M); ++c) {                                       \
            h0[c] = Hj[(j0 + 0) * ld + c]; h1[c] = Hj[(j0 + 1) * ld + c];     \
            h2[c] = Hj[(j0 + 2) * ld + c]; h3[c] = Hj[(j0 + 3) * ld + c];     \
            s0[c] = s1[c] = s2[c] = s3[c] = 0.0;                              \
        }                                                                     \
        for (int64_t i = 0; i < ib; ++i) {                                    \
            const double a0 = c0[i], a1 = c1[i], a2 = c2[i], a3 = c3[i];      \
            const double *hi = Hi + i * ld;                                   \
            double *xi = Xi + i * ld;                                         \
            _Pragma("omp simd")                                               \
            for (int c = 0; c < (M); ++c) {                                   \
                const double h = hi[c];                                       \
                xi[c] += a0 * h0[c] + a1 * h1[c] + a2 * h2[c] + a3 * h3[c];   \
                s0[c] += a0 * h; s1[c] += a1 * h;                             \
                s2[c] += a2 * h; s3[c] += a3 * h;                             \
            }                                                                 \
        }                                                                     \
        for (int c = 0; c < (M); ++c) {                                       \
            Xj[(j0 + 0) * ld + c] += s0[c]; Xj[(j0 + 1) * ld + c] += s1[c];   \
            Xj[(j0 + 2) * ld + c] += s2[c]; Xj[(j0 + 3) * ld + c] += s3[c];   \
        }                                                                     \
    }                                                                         \
    for (; j0 < q; ++j0) {                                                    \
        const double *col = A + j0 * lda;                                     \
        double hj[M], sj[M];                                                  \
        for (int c = 0; c < (M); ++c) {                                       \
            hj[c] = Hj[j0 * ld + c];                                          \
            sj[c] = 0.0;                                                      \
        }                                                                     \
        for (int64_t i = 0; i < ib; ++i) {                                    \
            const double a = col[i];                                          \
            for (int c = 0; c < (M); ++c) {                                   \
                Xi[i * ld + c] += a * hj[c];                                  \
                sj[c] += a * Hi[i * ld + c];                                  \
            }                                                                 \
        }                                                                     \
        for (int c = 0; c < (M); ++c)                                         \
            Xj[j0 * ld + c] += sj[c];                                         \
    }

#define KP_DEFINE_RECT(M)                                                     \
    static void rect_block_##M(int64_t ib, int64_t q,                         \
                               const double *restrict A, int64_t lda,         \
                               int64_t ld,                                    \
                               const double *restrict Hi,                     \
                               const double *restrict Hj,                     \
                               double *restrict Xi, double *restrict Xj)      \
    {                                                                         \
        KP_RECT_BODY(M)                                                       \
    }

KP_DEFINE_RECT(1)
KP_DEFINE_RECT(2)
KP_DEFINE_RECT(3)
KP_DEFINE_RECT(4)
KP_DEFINE_RECT(5)
KP_DEFINE_RECT(6)
KP_DEFINE_RECT(7)
KP_DEFINE_RECT(8)

/* w <= 8 of the columns of H and X (row stride ld) */
static void rect_block_w(int w, int64_t ib, int64_t q, const double *A,
                         int64_t lda, int64_t ld, const double *Hi,
                         const double *Hj, double *Xi, double *Xj)
{
    switch (w) {
    case 1: rect_block_1(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    case 2: rect_block_2(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    case 3: rect_block_3(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    case 4: rect_block_4(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    case 5: rect_block_5(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    case 6: rect_block_6(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    case 7: rect_block_7(ib, q, A, lda, ld, Hi, Hj, Xi, Xj); break;
    default: rect_block_8(ib, q, A, lda, ld, Hi, Hj, Xi, Xj);
    }
}

/* m > 8 (a node's ranks each contribute an observation): the columns of P
 * in tiles that stay in L2 while the observations pass over them eight at a
 * time, so P is still read from memory once and the register kernels above
 * do the arithmetic (a generic loop over m runs at a quarter of their rate). */
static void rect_block(int64_t ib, int64_t q, const double *A, int64_t lda,
                       int m, const double *Hi, const double *Hj, double *Xi,
                       double *Xj)
{
    if (m <= 8) {
        rect_block_w(m, ib, q, A, lda, m, Hi, Hj, Xi, Xj);
        return;
    }
    int64_t jb = (KP_CACHE_DOUBLES / (ib > 0 ? ib : 1)) & ~(int64_t)3;
    if (jb < 4)
        jb = 4;
    for (int64_t j0 = 0; j0 < q; j0 += jb) {
        const int64_t qj = (q - j0 < jb) ? q - j0 : jb;
        for (int c0 = 0; c0 < m; c0 += 8) {
            const int w = (m - c0 < 8) ? m - c0 : 8;
            rect_block_w(w, ib, qj, A + j0 * lda, lda, m, Hi + c0,
                         Hj + j0 * m + c0, Xi + c0, Xj + j0 * m + c0);
        }
    }
}

void hp_kalman_rect_product(int64_t p, int64_t q, const double *A,
                            int64_t lda, int m, const double *Hi,
                            const double *Hj, double *Xi, double *Xj)
{
    const int64_t IB = row_block(m);
    for (int64_t i0 = 0; i0 < p; i0 += IB) {
        const int64_t ib = (p - i0 < IB) ? p - i0 : IB;
        rect_block(ib, q, A + i0, lda, m, Hi + i0 * m, Hj, Xi + i0 * m, Xj);
    }
}

void hp_kalman_sym_lower_product(int64_t n, const double *A, int64_t lda,
                                 int m, const double *H, double *X)
{
    const int64_t IB = row_block(m);
    for (int64_t i0 = 0; i0 < n; i0 += IB) {
        const int64_t ib = (n - i0 < IB) ? n - i0 : IB;
        /* rows [i0, i0+ib), columns [0, i0): strictly below the diagonal */
        if (i0 > 0)
            rect_block(ib, i0, A + i0, lda, m, H + i0 * m, H, X + i0 * m, X);
        /* the diagonal square, lower triangle: panels of four columns, the
         * 4 x 4 triangle element by element, the rows below it as a block */
        for (int64_t j0 = i0; j0 < i0 + ib; j0 += 4) {
            const int64_t jb = (i0 + ib - j0 < 4) ? i0 + ib - j0 : 4;
            for (int64_t j = j0; j < j0 + jb; ++j) {
                const double *col = A + j * lda;
                for (int c = 0; c < m; ++c)
                    X[j * m + c] += col[j] * H[j * m + c];
                for (int64_t i = j + 1; i < j0 + jb; ++i)
                    for (int c = 0; c < m; ++c) {
                        X[i * m + c] += col[i] * H[j * m + c];
                        X[j * m + c] += col[i] * H[i * m + c];
                    }
            }
            const int64_t below = i0 + ib - (j0 + jb);
            if (below > 0)
                rect_block(below, jb, A + (j0 + jb) + j0 * lda, lda, m,
                           H + (j0 + jb) * m, H + j0 * m, X + (j0 + jb) * m,
                           X + j0 * m);
        }
    }
}
