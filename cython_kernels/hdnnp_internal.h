/*
 * hdnnp_internal.h — declarations shared by the files of the C core
 * (hdnnp_core.c, hdnnp_sfx.c); not part of the public interface.
 */
#ifndef HDNNP_INTERNAL_H
#define HDNNP_INTERNAL_H

#include "hdnnp_core.h"

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

/* 1 if t is one of the types of hdnnp_sfx.c */
int hdnnp_sfx_handles(int t);
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
