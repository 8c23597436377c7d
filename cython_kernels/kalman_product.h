/* X += P H for m observations at once over stored blocks of the Kalman
 * covariance (see kalman_product.c).  P blocks are column-major with leading
 * dimension lda; H and X are row-major (one row of m values per weight). */
#ifndef HPCNNP_KALMAN_PRODUCT_H
#define HPCNNP_KALMAN_PRODUCT_H

#include <stdint.h>

/* A: p x q block.  Xi[i] += sum_j A[i,j] Hj[j];  Xj[j] += sum_i A[i,j] Hi[i]. */
void hp_kalman_rect_product(int64_t p, int64_t q, const double *A,
                            int64_t lda, int m, const double *Hi,
                            const double *Hj, double *Xi, double *Xj);

/* A: n x n symmetric, lower triangle stored.  X += A H. */
void hp_kalman_sym_lower_product(int64_t n, const double *A, int64_t lda,
                                 int m, const double *H, double *X);

#endif
