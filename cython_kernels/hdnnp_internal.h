/*
 * hdnnp_internal.h — declarations shared by the files of the C core
 * (hdnnp_core.c, hdnnp_sfx.c); not part of the public interface.
 */
#ifndef HDNNP_INTERNAL_H
#define HDNNP_INTERNAL_H

#include "hdnnp_core.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* exp(x) for x <= 0 without library calls, so that loops over it vectorise.
 * Cody–Waite reduction x = n ln2 + r, |r| <= ln2/2, degree-13 Taylor
 * polynomial (truncation < 1e-17 relative), 2^n put into the exponent bits.
 * Arguments below -700 return exp(-700) ~ 1e-304 (the SF terms are then
 * negligible against any non-zero value). */
static inline double vexp(double x)
{
    x = x < -700.0 ? -700.0 : x;
    x = x > 700.0 ? 700.0 : x;
    const double shifter = 6755399441055744.0; /* 1.5 * 2^52 */
    const double t = x * 1.4426950408889634 + shifter;
    const double n = t - shifter;
    const double r = (x - n * 6.93147180369123816490e-01) - n * 1.90821492927058770002e-10;
    double p = 1.0 / 6227020800.0;
    p = p * r + 1.0 / 479001600.0;
    p = p * r + 1.0 / 39916800.0;
    p = p * r + 1.0 / 3628800.0;
    p = p * r + 1.0 / 362880.0;
    p = p * r + 1.0 / 40320.0;
    p = p * r + 1.0 / 5040.0;
    p = p * r + 1.0 / 720.0;
    p = p * r + 1.0 / 120.0;
    p = p * r + 1.0 / 24.0;
    p = p * r + 1.0 / 6.0;
    p = p * r + 0.5;
    p = p * r + 1.0;
    p = p * r + 1.0;
    uint64_t ti, pi;
    memcpy(&ti, &t, 8);
    memcpy(&pi, &p, 8);
    pi += ti << 52;
    double res;
    memcpy(&res, &pi, 8);
    return res;
}

/* Angular terms of the exponential angular SFs on a batch of cos(theta):
 * A = pref (1 + lam cos)^zeta and dA/dcos = pref zeta lam (1 + lam cos)^(zeta-1),
 * both 0 where 1 + lam cos <= 0 (pref = 2^(1-zeta)).  izeta > 0: integer zeta, the
 * power by squaring with the same exponent in every lane (vectorises); tmp: n doubles. */
static inline void hdnnp_cospow_batch(double lam, double zeta, int izeta, double pref, int n,
                                      const double *restrict cs, double *restrict A,
                                      double *restrict dA, double *restrict tmp)
{
    if (izeta > 0) {
        int e = izeta - 1;
#pragma omp simd
        for (int q = 0; q < n; ++q) {
            const double base = 1.0 + lam * cs[q];
            tmp[q] = base > 0.0 ? base : 0.0;
            dA[q] = 1.0;
        }
        while (e) {
            if (e & 1) {
#pragma omp simd
                for (int q = 0; q < n; ++q) dA[q] *= tmp[q];
            }
            e >>= 1;
            if (e) {
#pragma omp simd
                for (int q = 0; q < n; ++q) tmp[q] *= tmp[q];
            }
        }
#pragma omp simd
        for (int q = 0; q < n; ++q) {
            const double base = 1.0 + lam * cs[q];
            const int pos = base > 0.0;
            const double p = dA[q];
            A[q] = pos ? pref * p * base : 0.0;
            dA[q] = pos ? pref * zeta * lam * p : 0.0;
        }
        return;
    }
    for (int q = 0; q < n; ++q) {
        const double base = 1.0 + lam * cs[q];
        if (base <= 0.0) { A[q] = 0.0; dA[q] = 0.0; continue; }
        const double p = pow(base, zeta - 1.0);
        A[q] = pref * p * base;
        dA[q] = pref * zeta * lam * p;
    }
}

/* Add the derivatives of the nm members of one angular group for one pair (j, k)
 * to the compact derivative blocks: T_ij = dG/dr_ij, T_ik, T_jk, T_c = dG/dcos per
 * member; u, v = unit vectors of d_ij, d_ik; cij, cik = dcos/dd_ij, dcos/dd_ik;
 * wjk = (d_ik - d_ij)/r_jk (zero for wide groups); gj, gk = the member rows in the
 * blocks of j and k (consecutive), gi = the block of the central atom (rows sf[s]),
 * or, with sf == NULL, nm consecutive rows that collect the central atom's terms. */
static inline void hdnnp_pair_derivatives(int nm, const double *restrict Tij,
                                          const double *restrict Tik,
                                          const double *restrict Tjk,
                                          const double *restrict Tc, const double *u,
                                          const double *v, const double *cij,
                                          const double *cik, const double *wjk,
                                          double *restrict gj, double *restrict gk,
                                          double *restrict gi, const int *sf)
{
    const double u0 = u[0], u1 = u[1], u2 = u[2], v0 = v[0], v1 = v[1], v2 = v[2];
    const double cij0 = cij[0], cij1 = cij[1], cij2 = cij[2];
    const double cik0 = cik[0], cik1 = cik[1], cik2 = cik[2];
    const double w0 = wjk[0], w1 = wjk[1], w2 = wjk[2];
#pragma omp simd
    for (int s = 0; s < nm; ++s) {
        const double gij0 = Tij[s] * u0 + Tc[s] * cij0, gij1 = Tij[s] * u1 + Tc[s] * cij1, gij2 = Tij[s] * u2 + Tc[s] * cij2;
        const double gik0 = Tik[s] * v0 + Tc[s] * cik0, gik1 = Tik[s] * v1 + Tc[s] * cik1, gik2 = Tik[s] * v2 + Tc[s] * cik2;
        const double gjk0 = Tjk[s] * w0, gjk1 = Tjk[s] * w1, gjk2 = Tjk[s] * w2;
        gj[3 * s] += gjk0 - gij0; gj[3 * s + 1] += gjk1 - gij1; gj[3 * s + 2] += gjk2 - gij2;
        gk[3 * s] -= gik0 + gjk0; gk[3 * s + 1] -= gik1 + gjk1; gk[3 * s + 2] -= gik2 + gjk2;
    }
    if (!sf) {
#pragma omp simd
        for (int s = 0; s < nm; ++s) {
            gi[3 * s] += Tij[s] * u0 + Tc[s] * cij0 + Tik[s] * v0 + Tc[s] * cik0;
            gi[3 * s + 1] += Tij[s] * u1 + Tc[s] * cij1 + Tik[s] * v1 + Tc[s] * cik1;
            gi[3 * s + 2] += Tij[s] * u2 + Tc[s] * cij2 + Tik[s] * v2 + Tc[s] * cik2;
        }
        return;
    }
    for (int s = 0; s < nm; ++s) {
        double *pi = gi + 3 * (size_t)sf[s];
        pi[0] += Tij[s] * u0 + Tc[s] * cij0 + Tik[s] * v0 + Tc[s] * cik0;
        pi[1] += Tij[s] * u1 + Tc[s] * cij1 + Tik[s] * v1 + Tc[s] * cik1;
        pi[2] += Tij[s] * u2 + Tc[s] * cij2 + Tik[s] * v2 + Tc[s] * cik2;
    }
}

/* Cutoff function on a batch of distances (r >= rc gives 0, r < rci gives 1). */
void hdnnp_cutoff_batch(const hdnnp_cutoff *c, int n, const double *r, double *f, double *df);

/* The neighbourhood of one central atom as the group kernels see it
 * (neighbours sorted by element, see hdnnp_nlist). */
typedef struct {
    int nn, ne;
    const int *es;                 /* element ranges, ne + 1 entries */
    const double *r;               /* |d| per neighbour */
    const double *dx, *dy, *dz;    /* d = r_i - r_j per neighbour */
    const double *ux, *uy, *uz;    /* d / |d| */
    const int *idx;                /* atom index of each neighbour */
    const int *soff;               /* offset (SF entries) of each neighbour's derivative block */
    const double *fc, *dfc;        /* cutoff values, ncut x ldc */
    int ldc;
} hdnnp_nbhd;

/* ---- hdnnp_sfx.c: groups of the types 12, 13, 20-25 --------------------- */
typedef struct hdnnp_sfx_scratch hdnnp_sfx_scratch;

/* Add SF s of element el (parameters p, cutoff index icut for the Gaussian
 * types, -1 otherwise) to its group; nsf = number of SFs of the element.
 * Returns 0 or -1 (message in m->err). */
int hdnnp_sfx_add(hdnnp_model *m, hdnnp_element *el, int nsf, int s,
                  const hdnnp_sf_param *p, int icut);
/* Index the members of every group by radial function (after the last add). */
void hdnnp_sfx_finalize(hdnnp_element *el);
/* 1 if group g depends on neighbours of element q */
int hdnnp_sfx_depends(const hdnnp_xgroup *g, int q);
void hdnnp_sfx_free_groups(hdnnp_element *el);

hdnnp_sfx_scratch *hdnnp_sfx_scratch_new(const hdnnp_model *m, int maxnn);
void hdnnp_sfx_scratch_free(hdnnp_sfx_scratch *w);
/* Values (added to G) and, with dG != NULL, derivatives in the compact
 * layout (slot 0 = the central atom, neighbour blocks at nb->soff) of all
 * groups of element ei. */
void hdnnp_sfx_values(const hdnnp_model *m, int ei, const hdnnp_nbhd *nb,
                      hdnnp_sfx_scratch *w, double *G, double *dG);
/* Forces F (all atoms, added), strain derivative V (9, added) and the force
 * on the central atom Fi (3, added) of all groups of element ei, contracted
 * with wsf[s] = dE/dG_s. */
void hdnnp_sfx_forces(const hdnnp_model *m, int ei, const hdnnp_nbhd *nb,
                      hdnnp_sfx_scratch *w, const double *wsf, double *F, double *V,
                      double *Fi);

#endif
