/*
 * hdnnp_sfx.c — symmetry-function groups of the n2p2 types beyond 2/3/9:
 *
 *   12  G = sum_j Z_j exp(-eta (r_ij - rs)^2) f_c(r_ij)                 (all j)
 *   13  G = 2^(1-zeta) sum_{j<k} Z_j Z_k (1 + lam cos)^zeta
 *           exp(-eta [(r_ij-rs)^2 + (r_ik-rs)^2 + (r_jk-rs)^2]) f_c f_c f_c  (all j, k)
 *   20  G = sum_{j in E1} C(r_ij)
 *   21  G = sum_{j<k, {E1,E2}} C(r_ij) C(r_ik) C(r_jk) A(theta_ijk)
 *   22  G = sum_{j<k, {E1,E2}} C(r_ij) C(r_ik) A(theta_ijk)
 *   23-25  as 20-22 over all neighbours, weighted with Z_j (Z_j Z_k)
 *
 * (n2p2 SymFnc{ExpRadWeighted,ExpAngnWeighted,CompRad,CompAngn,CompAngw,
 * CompRadWeighted,CompAngnWeighted,CompAngwWeighted}; polynomial SFs of
 * Bircher, Singraber, Dellago, Mach. Learn.: Sci. Technol. 2, 035026 (2021),
 * doi:10.1088/2632-2153/abf817).  Z = atomic number, f_c = the potential's
 * cutoff function, theta_ijk = acos(cos) in radians.
 *
 * The compact function C of an interval (left, right), with centre
 * c = (left + right)/2 and half width w = (right - left)/2, is
 * core(|a - c|/w) inside the open interval and 0 outside; the core is one of
 * n2p2's polynomials p1..p4 or the bump e (CoreFunction), and the
 * "asymmetric" radial variant pNa evaluates core((2 - x) x).  The angular
 * function uses the core of the radial one, never asymmetric (as n2p2).
 *
 * Every group member s = (a, b) is a product of radial functions h_a of the
 * distances (r_ij, r_ik and, for narrow types, r_jk) and of an angular function
 * A_b, so all groups share one kernel: tables h_a, h_a' per neighbour, then for
 * every neighbour j one dense run over its partners k (contiguous in the
 * neighbour list) with cos theta, A_b, dA_b/dcos and h_a(r_jk) per pair, and
 * G_s += h_a(j) sum_k h_a(k) [h_a(r_jk)] A_b(k).  Forces contract dE/dG_s over
 * the members first (four scalars per pair: dE/dr_ij, dE/dr_ik, dE/dr_jk,
 * dE/dcos), then apply the geometry once per pair.  Derivatives follow from the
 * chain rule through r_ij, r_ik, r_jk and cos(theta_ijk); the vector
 * conventions are those of hdnnp_core.c (d_ij = r_i - r_j).
 */
#include "hdnnp_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* |cos theta| this close to 1 counts as a straight line: the compact angular
 * functions are 0 there (n2p2 skips cos <= -1 and cos >= 1; the margin of a
 * few ulp keeps the images (i, i+T, i-T) of a small periodic cell on the
 * excluded side whatever the rounding of cos). */
#define SFX_COLLINEAR (8.0 * 2.220446049250313e-16)

static const struct {
    int type, neighbours, angular, narrow, weighted, compact;
} TYPES[] = {
    {12, 0, 0, 0, 1, 0}, {13, 0, 1, 1, 1, 0},
    {20, 1, 0, 0, 0, 1}, {21, 2, 1, 1, 0, 1}, {22, 2, 1, 0, 0, 1},
    {23, 0, 0, 0, 1, 1}, {24, 0, 1, 1, 1, 1}, {25, 0, 1, 0, 1, 1},
};
#define N_TYPES ((int)(sizeof(TYPES) / sizeof(TYPES[0])))

static int type_row(int t)
{
    for (int i = 0; i < N_TYPES; ++i)
        if (TYPES[i].type == t) return i;
    return -1;
}

static void *xcalloc(size_t n, size_t s) { return calloc(n ? n : 1, s); }

/* ======================================================================= */
/* group construction                                                       */
/* ======================================================================= */

static int same_fn(const hdnnp_fn1d *a, const hdnnp_fn1d *b)
{
    if (a->kind != b->kind) return 0;
    switch (a->kind) {
    case HDNNP_FN_GAUSS: return a->eta == b->eta && a->rs == b->rs;
    case HDNNP_FN_COSPOW: return a->lam == b->lam && a->zeta == b->zeta;
    default:
        return a->left == b->left && a->right == b->right && a->core == b->core &&
               a->asym == b->asym;
    }
}

/* index of f in list (appended if new) */
static int fn_index(hdnnp_fn1d *list, int *n, const hdnnp_fn1d *f)
{
    for (int i = 0; i < *n; ++i)
        if (same_fn(&list[i], f)) return i;
    list[*n] = *f;
    return (*n)++;
}

static void compact_fn(hdnnp_fn1d *f, double left, double right, int core, int asym)
{
    /* as n2p2's CompactFunction::setLeftRight */
    const double width = (right - left) / 2.0;
    memset(f, 0, sizeof(*f));
    f->kind = HDNNP_FN_COMPACT;
    f->left = left;
    f->right = right;
    f->centre = (right + left) / 2.0;
    f->scale = 1.0 / width;
    f->core = core;
    f->asym = asym;
}

/* the checks of n2p2's setParameters for the compact types */
static int check_compact(hdnnp_model *m, int s, const hdnnp_sf_param *p, int angular)
{
    if (p->core < HDNNP_CORE_POLY1 || p->core > HDNNP_CORE_EXP ||
        (p->asym && p->core == HDNNP_CORE_EXP)) {
        snprintf(m->err, HDNNP_ERRLEN, "symmetry function %d: unknown compact function core %d%s",
                 s + 1, p->core, p->asym ? " (asymmetric)" : "");
        return -1;
    }
    if (!(p->rl < p->rc)) {
        snprintf(m->err, HDNNP_ERRLEN, "symmetry function %d: r_l = %g must be smaller than r_c = %g",
                 s + 1, p->rl, p->rc);
        return -1;
    }
    if (!angular) return 0;
    const double al = p->angle_l, ar = p->angle_r, centre = (al + ar) / 2.0;
    if (!(al < ar) || ar - al > 360.0 || (al < 0.0 && centre != 0.0) ||
        (ar > 180.0 && centre != 180.0)) {
        snprintf(m->err, HDNNP_ERRLEN,
                 "symmetry function %d: angle interval [%g, %g] degrees: needs left < right, "
                 "width <= 360 and, beyond [0, 180], the centre 0 or 180", s + 1, al, ar);
        return -1;
    }
    return 0;
}

static int find_group(const hdnnp_element *el, const hdnnp_sf_param *p, int icut)
{
    for (int g = 0; g < el->nxg; ++g) {
        const hdnnp_xgroup *x = &el->xg[g];
        if (x->type == p->type && x->e1 == p->e1 && x->e2 == p->e2 && x->icut == icut)
            return g;
    }
    return -1;
}

static int new_group(hdnnp_element *el, int nsf, const hdnnp_sf_param *p, int icut, int row)
{
    if (!el->xg) el->xg = (hdnnp_xgroup *)xcalloc(nsf, sizeof(hdnnp_xgroup));
    if (!el->xg) return -1;
    hdnnp_xgroup *x = &el->xg[el->nxg];
    memset(x, 0, sizeof(*x));
    x->type = p->type;
    x->angular = TYPES[row].angular;
    x->narrow = TYPES[row].narrow;
    x->weighted = TYPES[row].weighted;
    x->e1 = p->e1;
    x->e2 = p->e2;
    x->icut = icut;
    x->sf = (int *)xcalloc(nsf, sizeof(int));
    x->mrad = (int *)xcalloc(nsf, sizeof(int));
    x->mang = (int *)xcalloc(nsf, sizeof(int));
    x->rad = (hdnnp_fn1d *)xcalloc(nsf, sizeof(hdnnp_fn1d));
    x->ang = (hdnnp_fn1d *)xcalloc(nsf, sizeof(hdnnp_fn1d));
    x->abeg = (int *)xcalloc((size_t)nsf + 1, sizeof(int));
    x->amem = (int *)xcalloc(nsf, sizeof(int));
    for (int q = 0; q < HDNNP_MAX_ELEMENTS; ++q) x->pos[q] = -1;
    if (!x->sf || !x->mrad || !x->mang || !x->rad || !x->ang || !x->abeg || !x->amem) return -1;
    return el->nxg++;
}

int hdnnp_sfx_add(hdnnp_model *m, hdnnp_element *el, int nsf, int s,
                  const hdnnp_sf_param *p, int icut)
{
    const int row = type_row(p->type);
    if (row < 0) {
        snprintf(m->err, HDNNP_ERRLEN, "symmetry function %d: type %d is not a group type", s + 1, p->type);
        return -1;
    }
    if (TYPES[row].weighted)
        for (int e = 0; e < m->nelements; ++e)
            if (m->z[e] <= 0) {
                snprintf(m->err, HDNNP_ERRLEN,
                         "symmetry function %d (type %d) is weighted with atomic numbers, "
                         "but the model has none for element %d", s + 1, p->type, e);
                return -1;
            }
    if (TYPES[row].compact && check_compact(m, s, p, TYPES[row].angular) != 0) return -1;
    int g = find_group(el, p, TYPES[row].compact ? -1 : icut);
    if (g < 0) g = new_group(el, nsf, p, TYPES[row].compact ? -1 : icut, row);
    if (g < 0) {
        snprintf(m->err, HDNNP_ERRLEN, "out of memory");
        return -1;
    }
    hdnnp_xgroup *x = &el->xg[g];
    hdnnp_fn1d f;
    if (TYPES[row].compact) {
        compact_fn(&f, p->rl, p->rc, p->core, p->asym);
    } else {
        memset(&f, 0, sizeof(f));
        f.kind = HDNNP_FN_GAUSS;
        f.eta = p->eta;
        f.rs = p->rs;
    }
    const int a = fn_index(x->rad, &x->nrad, &f);
    int b = 0;
    if (x->angular) {
        if (TYPES[row].compact) {
            /* angles in radians as n2p2 converts them */
            compact_fn(&f, p->angle_l * M_PI / 180.0, p->angle_r * M_PI / 180.0, p->core, 0);
        } else {
            memset(&f, 0, sizeof(f));
            f.kind = HDNNP_FN_COSPOW;
            f.lam = p->lam;
            f.zeta = p->zeta;
            f.pref = pow(2.0, 1.0 - p->zeta);
            f.izeta = (p->zeta == floor(p->zeta) && p->zeta >= 1.0 && p->zeta < 1000.0)
                          ? (int)p->zeta : -1;
        }
        b = fn_index(x->ang, &x->nang, &f);
    }
    x->sf[x->n] = s;
    x->mrad[x->n] = a;
    x->mang[x->n] = b;
    x->n++;
    if (p->rc > x->rmax) x->rmax = p->rc;
    return 0;
}

void hdnnp_sfx_finalize(hdnnp_element *el)
{
    for (int g = 0; g < el->nxg; ++g) {
        hdnnp_xgroup *x = &el->xg[g];
        for (int a = 0; a <= x->nrad; ++a) x->abeg[a] = 0;
        for (int s = 0; s < x->n; ++s) x->abeg[x->mrad[s] + 1]++;
        for (int a = 0; a < x->nrad; ++a) x->abeg[a + 1] += x->abeg[a];
        int *fill = x->amem;   /* counting sort, members in order within a */
        for (int a = 0; a < x->nrad; ++a)
            for (int s = 0; s < x->n; ++s)
                if (x->mrad[s] == a) *fill++ = s;
    }
}

int hdnnp_sfx_depends(const hdnnp_xgroup *g, int q)
{
    return g->weighted || g->e1 == q || (g->angular && g->e2 == q);
}

void hdnnp_sfx_free_groups(hdnnp_element *el)
{
    for (int g = 0; g < el->nxg; ++g) {
        hdnnp_xgroup *x = &el->xg[g];
        free(x->sf); free(x->mrad); free(x->mang); free(x->rad); free(x->ang);
        free(x->abeg); free(x->amem);
    }
    free(el->xg);
    el->xg = NULL;
    el->nxg = 0;
}

/* ======================================================================= */
/* scratch                                                                  */
/* ======================================================================= */

#define SFX_RUN_ARRAYS 13
struct hdnnp_sfx_scratch {
    int maxnn, maxrad, maxang;
    int *nel;                       /* element of each neighbour */
    double *zw;                     /* atomic number of each neighbour */
    double *H, *dH;                 /* maxrad x maxnn: radial functions per neighbour */
    double *h, *dh, *t;             /* maxnn */
    /* one run: the partners k of one neighbour j (maxnn each) */
    double *cs, *x2, *rjk, *fcjk, *dfcjk, *wgt, *th, *nis, *tmp, *Sij, *Sik, *Sjk, *Sc;
    double *hjk, *dhjk;             /* maxrad x maxnn */
    double *A, *dA;                 /* maxang x maxnn */
    double *W;                      /* maxrad x maxang: dE/dG of the members */
    int *Wany;                      /* maxrad: row of W not zero */
    double *Tm;                     /* 4 x maxmem: T_ij, T_ik, T_jk, T_c per member */
    double *gi;                     /* 3 x maxmem: dG_s/dr_i of the members (in Tm) */
    int maxmem;
};

hdnnp_sfx_scratch *hdnnp_sfx_scratch_new(const hdnnp_model *m, int maxnn)
{
    hdnnp_sfx_scratch *w = (hdnnp_sfx_scratch *)xcalloc(1, sizeof(*w));
    if (!w) return NULL;
    int maxrad = 1, maxang = 1, maxmem = 1;
    for (int e = 0; e < m->nelements; ++e)
        for (int g = 0; g < m->el[e].nxg; ++g) {
            const hdnnp_xgroup *x = &m->el[e].xg[g];
            if (x->nrad > maxrad) maxrad = x->nrad;
            if (x->nang > maxang) maxang = x->nang;
            if (x->n > maxmem) maxmem = x->n;
        }
    w->maxnn = maxnn > 0 ? maxnn : 1;
    w->maxrad = maxrad;
    w->maxang = maxang;
    w->maxmem = maxmem;
    const size_t nn = (size_t)w->maxnn;
    w->nel = (int *)xcalloc(nn + (size_t)maxrad, sizeof(int));
    w->zw = (double *)xcalloc(nn * (4 + SFX_RUN_ARRAYS + 4 * (size_t)maxrad + 2 * (size_t)maxang)
                              + (size_t)maxrad * maxang, sizeof(double));
    w->Tm = (double *)xcalloc(7 * (size_t)maxmem, sizeof(double));
    if (!w->nel || !w->zw || !w->Tm) { hdnnp_sfx_scratch_free(w); return NULL; }
    w->gi = w->Tm + 4 * (size_t)maxmem;
    w->Wany = w->nel + nn;
    double *next = w->zw + nn;
    double **arr[3 + SFX_RUN_ARRAYS] = {&w->h, &w->dh, &w->t, &w->cs, &w->x2, &w->rjk,
                                        &w->fcjk, &w->dfcjk, &w->wgt, &w->th, &w->nis,
                                        &w->tmp, &w->Sij, &w->Sik, &w->Sjk, &w->Sc};
    for (int a = 0; a < 3 + SFX_RUN_ARRAYS; ++a) { *arr[a] = next; next += nn; }
    w->H = next; next += nn * maxrad;
    w->dH = next; next += nn * maxrad;
    w->hjk = next; next += nn * maxrad;
    w->dhjk = next; next += nn * maxrad;
    w->A = next; next += nn * maxang;
    w->dA = next; next += nn * maxang;
    w->W = next;
    return w;
}

void hdnnp_sfx_scratch_free(hdnnp_sfx_scratch *w)
{
    if (!w) return;
    free(w->nel); free(w->zw); free(w->Tm);
    free(w);
}

/* element and atomic number of every neighbour */
static void prepare(const hdnnp_model *m, const hdnnp_nbhd *nb, hdnnp_sfx_scratch *w)
{
    for (int e = 0; e < nb->ne; ++e)
        for (int q = nb->es[e]; q < nb->es[e + 1]; ++q) {
            w->nel[q] = e;
            w->zw[q] = (double)m->z[e];
        }
}

/* ======================================================================= */
/* one-dimensional functions on batches                                     */
/* ======================================================================= */

/* n2p2's CoreFunction polynomials and bump (value f, derivative d at y) */
#define CORE_POLY1(y, f, d) do { f = (2.0 * y - 3.0) * y * y + 1.0; d = y * (6.0 * y - 6.0); } while (0)
#define CORE_POLY2(y, f, d) do { const double y2_ = y * y;                              \
        f = ((15.0 - 6.0 * y) * y - 10.0) * y * y2_ + 1.0;                               \
        d = y2_ * ((60.0 - 30.0 * y) * y - 30.0); } while (0)
#define CORE_POLY3(y, f, d) do { const double y2_ = y * y;                              \
        f = (y * (y * (20.0 * y - 70.0) + 84.0) - 35.0) * y2_ * y2_ + 1.0;               \
        d = y2_ * y * (y * (y * (140.0 * y - 420.0) + 420.0) - 140.0); } while (0)
#define CORE_POLY4(y, f, d) do { const double y4_ = (y * y) * (y * y);                  \
        f = (y * (y * ((315.0 - 70.0 * y) * y - 540.0) + 420.0) - 126.0) * y * y4_ + 1.0; \
        d = y4_ * (y * (y * ((2520.0 - 630.0 * y) * y - 3780.0) + 2520.0) - 630.0); } while (0)
#define CORE_EXP(y, f, d) do { const double den_ = y * y - 1.0, ok_ = den_ < 0.0;       \
        const double tt_ = 1.0 / (ok_ ? den_ : -1.0), ex_ = vexp(tt_);                   \
        f = ok_ ? 2.718281828459045 * ex_ : 0.0;                                          \
        d = ok_ ? -2.0 * 2.718281828459045 * y * tt_ * tt_ * ex_ : 0.0; } while (0)

/* acos(c), |c| <= 1, without library calls so that the pair loops vectorise:
 * acos c = pi/2 - asin c for |c| <= 1/2; beyond, acos |c| = 2 asin(sqrt((1 - |c|)/2))
 * (1 - |c| is exact there) and acos(-|c|) = pi - acos |c|.  asin on [0, 1/2] is its
 * Taylor series sum_n (2n)!/(4^n (n!)^2 (2n+1)) z^(2n+1), 24 terms (truncation
 * < 4e-17 relative); the result agrees with libm's acos to a few ulp. */
static inline double vacos(double c)
{
    const double a = fabs(c);
    const int big = a > 0.5;
    const double z = big ? sqrt(0.5 * (1.0 - a)) : a;
    const double t = z * z;
    double p = 0.0024894486782468836;
    p = p * t + 0.0026578706382072901;
    p = p * t + 0.0028461784011089421;
    p = p * t + 0.0030578216492580306;
    p = p * t + 0.0032970595034734849;
    p = p * t + 0.0035692053938259347;
    p = p * t + 0.0038809645588376691;
    p = p * t + 0.0042409070936793632;
    p = p * t + 0.0046601434869150962;
    p = p * t + 0.0051533096823199046;
    p = p * t + 0.0057400376708419236;
    p = p * t + 0.0064472103118896487;
    p = p * t + 0.0073125258735988454;
    p = p * t + 0.0083903358096168151;
    p = p * t + 0.0097616095291940784;
    p = p * t + 0.011551800896139705;
    p = p * t + 0.013964843750000001;
    p = p * t + 0.017352764423076924;
    p = p * t + 0.022372159090909092;
    p = p * t + 0.030381944444444444;
    p = p * t + 0.044642857142857144;
    p = p * t + 0.074999999999999997;
    p = p * t + 0.16666666666666666;
    p = p * t + 1.0;
    const double s = z * p;                 /* asin(z) */
    const double pi = 3.14159265358979323846, half_pi = 1.57079632679489661923;
    const double r_small = half_pi - (c < 0.0 ? -s : s);
    const double r_big = c > 0.0 ? 2.0 * s : pi - 2.0 * s;
    return big ? r_big : r_small;
}

/* compact function of a batch of arguments: h = C(a), dh = dC/da */
#define COMPACT_LOOP(CORE)                                                                \
    _Pragma("omp simd")                                                                   \
    for (int q = 0; q < n; ++q) {                                                         \
        const double t = (a[q] - c) * s;                                                  \
        double x = fabs(t);                                                               \
        x = x < 1.0 ? x : 1.0;                                                            \
        const double y = asym ? (2.0 - x) * x : x;                                        \
        double fy, dy;                                                                    \
        CORE(y, fy, dy);                                                                  \
        const int in = (a[q] > lo) & (a[q] < hi);                                         \
        const double dd = (asym ? dy * (2.0 - 2.0 * x) : dy) * s;                         \
        h[q] = in ? fy : 0.0;                                                             \
        dh[q] = in ? (t < 0.0 ? -dd : dd) : 0.0;                                          \
    }

static void compact_batch(const hdnnp_fn1d *f, int n, const double *restrict a,
                          double *restrict h, double *restrict dh)
{
    const double c = f->centre, s = f->scale, lo = f->left, hi = f->right;
    const int asym = f->asym;
    switch (f->core) {
    case HDNNP_CORE_POLY1: COMPACT_LOOP(CORE_POLY1) break;
    case HDNNP_CORE_POLY2: COMPACT_LOOP(CORE_POLY2) break;
    case HDNNP_CORE_POLY3: COMPACT_LOOP(CORE_POLY3) break;
    case HDNNP_CORE_POLY4: COMPACT_LOOP(CORE_POLY4) break;
    default: COMPACT_LOOP(CORE_EXP) break;
    }
}

/* radial function of a batch of distances r (fc/dfc: cutoff values at r,
 * used by the Gaussian kind only) */
static void radial_batch(const hdnnp_fn1d *f, int n, const double *restrict r,
                         const double *restrict fc, const double *restrict dfc,
                         double *restrict h, double *restrict dh)
{
    if (f->kind == HDNNP_FN_COMPACT) {
        compact_batch(f, n, r, h, dh);
        return;
    }
    const double eta = f->eta, rs = f->rs;
#pragma omp simd
    for (int q = 0; q < n; ++q) {
        const double x = r[q] - rs, e = vexp(-eta * x * x);
        h[q] = e * fc[q];
        dh[q] = e * (dfc[q] - 2.0 * eta * x * fc[q]);
    }
}

/* angular function of a batch: A and dA/dcos from cos (COSPOW) or from
 * theta and -1/sin(theta) (COMPACT) */
static void angular_batch(const hdnnp_fn1d *f, int n, const double *restrict cs,
                          const double *restrict th, const double *restrict nis,
                          double *restrict A, double *restrict dA, double *restrict tmp)
{
    if (f->kind == HDNNP_FN_COMPACT) {
        compact_batch(f, n, th, A, dA);
#pragma omp simd
        for (int q = 0; q < n; ++q) dA[q] *= nis[q];
        return;
    }
    hdnnp_cospow_batch(f->lam, f->zeta, f->izeta, f->pref, n, cs, A, dA, tmp);
}

/* ======================================================================= */
/* radial groups (12, 20, 23)                                               */
/* ======================================================================= */

/* neighbour range of a group (weighted: all neighbours) */
static void neighbour_range(const hdnnp_xgroup *g, const hdnnp_nbhd *nb, int e, int *qa, int *qb)
{
    if (g->weighted) { *qa = 0; *qb = nb->nn; return; }
    *qa = nb->es[e];
    *qb = nb->es[e + 1];
}

/* h, dh of radial function a at the neighbours [qa, qb) (into w->h/w->dh,
 * indexed from qa), weighted with Z for weighted groups */
static void radial_table(const hdnnp_xgroup *g, int a, const hdnnp_nbhd *nb, int qa, int qb,
                         hdnnp_sfx_scratch *w, double *h, double *dh)
{
    const double *fc = NULL, *dfc = NULL;
    if (g->icut >= 0) {
        fc = nb->fc + (size_t)g->icut * nb->ldc + qa;
        dfc = nb->dfc + (size_t)g->icut * nb->ldc + qa;
    }
    radial_batch(&g->rad[a], qb - qa, nb->r + qa, fc, dfc, h, dh);
    if (g->weighted && !g->angular) {
        const double *z = w->zw + qa;
#pragma omp simd
        for (int q = 0; q < qb - qa; ++q) { h[q] *= z[q]; dh[q] *= z[q]; }
    }
}

static void radial_values(const hdnnp_xgroup *g, const hdnnp_nbhd *nb, hdnnp_sfx_scratch *w,
                          double *G, double *dG)
{
    int qa, qb;
    neighbour_range(g, nb, g->e1, &qa, &qb);
    const int cnt = qb - qa;
    if (cnt <= 0) return;
    for (int s = 0; s < g->n; ++s) {
        double *h = w->h, *dh = w->dh;
        radial_table(g, g->mrad[s], nb, qa, qb, w, h, dh);
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int q = 0; q < cnt; ++q) sum += h[q];
        G[g->sf[s]] += sum;
        if (!dG) continue;
        double *gi = dG + 3 * (size_t)g->sf[s];
        for (int q = qa; q < qb; ++q) {
            const double c = dh[q - qa] / nb->r[q];
            if (c == 0.0) continue;
            const double v0 = c * nb->dx[q], v1 = c * nb->dy[q], v2 = c * nb->dz[q];
            double *gj = dG + 3 * ((size_t)nb->soff[q] + g->pos[w->nel[q]] + s);
            gi[0] += v0; gi[1] += v1; gi[2] += v2;
            gj[0] -= v0; gj[1] -= v1; gj[2] -= v2;
        }
    }
}

static void radial_forces(const hdnnp_xgroup *g, const hdnnp_nbhd *nb, hdnnp_sfx_scratch *w,
                          const double *wsf, double *F, double *V, double *Fi)
{
    int qa, qb;
    neighbour_range(g, nb, g->e1, &qa, &qb);
    const int cnt = qb - qa;
    if (cnt <= 0) return;
    double *t = w->t;
    for (int q = 0; q < cnt; ++q) t[q] = 0.0;
    for (int s = 0; s < g->n; ++s) {
        const double ws = wsf[g->sf[s]];
        if (ws == 0.0) continue;
        radial_table(g, g->mrad[s], nb, qa, qb, w, w->h, w->dh);
        const double *dh = w->dh;
#pragma omp simd
        for (int q = 0; q < cnt; ++q) t[q] += ws * dh[q];
    }
    for (int q = qa; q < qb; ++q) {
        const double c = t[q - qa] / nb->r[q];
        if (c == 0.0) continue;
        const double d0 = nb->dx[q], d1 = nb->dy[q], d2 = nb->dz[q];
        const double g0 = c * d0, g1 = c * d1, g2 = c * d2;
        double *Fj = F + 3 * (size_t)nb->idx[q];
        Fi[0] -= g0; Fi[1] -= g1; Fi[2] -= g2;
        Fj[0] += g0; Fj[1] += g1; Fj[2] += g2;
        V[0] += g0 * d0; V[1] += g0 * d1; V[2] += g0 * d2;
        V[3] += g1 * d0; V[4] += g1 * d1; V[5] += g1 * d2;
        V[6] += g2 * d0; V[7] += g2 * d1; V[8] += g2 * d2;
    }
}

/* ======================================================================= */
/* angular groups (13, 21, 22, 24, 25)                                      */
/* ======================================================================= */

/* tables H[a][q], dH[a][q] of the radial functions at the neighbours [qa, qb) */
static void angular_tables(const hdnnp_xgroup *g, const hdnnp_nbhd *nb, hdnnp_sfx_scratch *w,
                           int qa, int qb)
{
    for (int a = 0; a < g->nrad; ++a)
        radial_table(g, a, nb, qa, qb, w, w->H + (size_t)a * w->maxnn + qa,
                     w->dH + (size_t)a * w->maxnn + qa);
}

/* The pairs (j, k) of one neighbour j are a dense run over its partners
 * k = kbeg ... kbeg + L - 1 (contiguous in the neighbour list, so the radial
 * tables are read without gathers).  Pairs outside the group's range carry
 * the weight 0.  Per pair: cos theta, the weight (Z_j Z_k for weighted groups),
 * for narrow groups r_jk and the radial functions of r_jk, and the angular
 * functions A_b, dA_b/dcos times the weight. */
static void run_setup(const hdnnp_model *m, const hdnnp_xgroup *g, const hdnnp_nbhd *nb,
                      hdnnp_sfx_scratch *w, int j, int kbeg, int L)
{
    const double rc = g->rmax, rc2 = rc * rc;
    const int narrow = g->narrow, mx = w->maxnn;
    const double dx = nb->dx[j], dy = nb->dy[j], dz = nb->dz[j];
    const double ux = nb->ux[j], uy = nb->uy[j], uz = nb->uz[j];
    const double zj = g->weighted ? w->zw[j] : 1.0;
    const double *restrict dxk = nb->dx + kbeg, *restrict dyk = nb->dy + kbeg;
    const double *restrict dzk = nb->dz + kbeg, *restrict rk = nb->r + kbeg;
    const double *restrict uxk = nb->ux + kbeg, *restrict uyk = nb->uy + kbeg;
    const double *restrict uzk = nb->uz + kbeg, *restrict zk = w->zw + kbeg;
    double *restrict x2 = w->x2, *restrict cs = w->cs, *restrict wgt = w->wgt;
    const int weighted = g->weighted;
#pragma omp simd
    for (int t = 0; t < L; ++t) {
        const double a0 = dxk[t] - dx, a1 = dyk[t] - dy, a2 = dzk[t] - dz;
        x2[t] = a0 * a0 + a1 * a1 + a2 * a2;
        cs[t] = ux * uxk[t] + uy * uyk[t] + uz * uzk[t];
        const int ok = (rk[t] < rc) & (!narrow | (x2[t] < rc2));
        wgt[t] = ok ? (weighted ? zj * zk[t] : 1.0) : 0.0;
    }
    if (narrow) {
        double *restrict rjk = w->rjk;
#pragma omp simd
        for (int t = 0; t < L; ++t) rjk[t] = sqrt(x2[t]);
        if (g->icut >= 0) hdnnp_cutoff_batch(&m->cut[g->icut], L, w->rjk, w->fcjk, w->dfcjk);
        for (int a = 0; a < g->nrad; ++a)
            radial_batch(&g->rad[a], L, w->rjk, w->fcjk, w->dfcjk, w->hjk + (size_t)a * mx,
                         w->dhjk + (size_t)a * mx);
    }
    if (g->ang[0].kind == HDNNP_FN_COMPACT) {
        double *restrict th = w->th, *restrict nis = w->nis;
#pragma omp simd
        for (int t = 0; t < L; ++t) {
            const double c = cs[t];
            const int ok = (c > -1.0 + SFX_COLLINEAR) & (c < 1.0 - SFX_COLLINEAR);
            const double cc = ok ? c : 0.0;
            th[t] = ok ? vacos(cc) : 1.0e3;    /* outside every angle interval */
            nis[t] = ok ? -1.0 / sqrt(1.0 - cc * cc) : 0.0;
        }
    }
    for (int b = 0; b < g->nang; ++b) {
        double *restrict A = w->A + (size_t)b * mx, *restrict dA = w->dA + (size_t)b * mx;
        angular_batch(&g->ang[b], L, cs, w->th, w->nis, A, dA, w->tmp);
#pragma omp simd
        for (int t = 0; t < L; ++t) { A[t] *= wgt[t]; dA[t] *= wgt[t]; }
    }
}

/* values of the members from one run: G_s += H_a(j) sum_k H_a(k) [h_a(r_jk)] A_b */
static void run_values(const hdnnp_xgroup *g, hdnnp_sfx_scratch *w, int j, int kbeg, int L,
                       double *G)
{
    const int mx = w->maxnn;
    for (int a = 0; a < g->nrad; ++a) {
        const double hj = w->H[(size_t)a * mx + j];
        if (hj == 0.0) continue;
        const double *restrict Hk = w->H + (size_t)a * mx + kbeg;
        const double *restrict v = Hk;
        if (g->narrow) {
            const double *restrict hjk = w->hjk + (size_t)a * mx;
            double *restrict tmp = w->tmp;
#pragma omp simd
            for (int t = 0; t < L; ++t) tmp[t] = Hk[t] * hjk[t];
            v = tmp;
        }
        for (int i = g->abeg[a]; i < g->abeg[a + 1]; ++i) {
            const int s = g->amem[i];
            const double *restrict A = w->A + (size_t)g->mang[s] * mx;
            double sum = 0.0;
#pragma omp simd reduction(+ : sum)
            for (int t = 0; t < L; ++t) sum += v[t] * A[t];
            G[g->sf[s]] += hj * sum;
        }
    }
}

/* derivatives of the members from one run (compact layout, see hdnnp_sfx_values);
 * the central atom's terms go to w->gi (rows = members) */
static void run_derivatives(const hdnnp_xgroup *g, const hdnnp_nbhd *nb, hdnnp_sfx_scratch *w,
                            int j, int kbeg, int L, double *dG)
{
    const int nm = g->n, mx = w->maxnn, narrow = g->narrow;
    double *restrict Tij = w->Tm, *restrict Tik = Tij + w->maxmem;
    double *restrict Tjk = Tik + w->maxmem, *restrict Tc = Tjk + w->maxmem;
    const double rij = nb->r[j];
    const double uu[3] = {nb->ux[j], nb->uy[j], nb->uz[j]};
    double *restrict gj = dG + 3 * ((size_t)nb->soff[j] + g->pos[w->nel[j]]);
    for (int t = 0; t < L; ++t) {
        if (w->wgt[t] == 0.0) continue;
        const int k = kbeg + t;
        const double rik = nb->r[k], cs = w->cs[t];
        const double vv[3] = {nb->ux[k], nb->uy[k], nb->uz[k]};
        const double cij[3] = {(vv[0] - cs * uu[0]) / rij, (vv[1] - cs * uu[1]) / rij,
                               (vv[2] - cs * uu[2]) / rij};
        const double cik[3] = {(uu[0] - cs * vv[0]) / rik, (uu[1] - cs * vv[1]) / rik,
                               (uu[2] - cs * vv[2]) / rik};
        double ww[3] = {0.0, 0.0, 0.0};
        if (narrow) {
            const double ir = 1.0 / w->rjk[t];
            ww[0] = (nb->dx[k] - nb->dx[j]) * ir;
            ww[1] = (nb->dy[k] - nb->dy[j]) * ir;
            ww[2] = (nb->dz[k] - nb->dz[j]) * ir;
        }
        int any = 0;
        for (int a = 0; a < g->nrad; ++a) {
            /* the radial factors of this pair, shared by the members of a */
            const size_t ra = (size_t)a * mx;
            const double hj = w->H[ra + j], hk = w->H[ra + k];
            const double f = narrow ? w->hjk[ra + t] : 1.0, df = narrow ? w->dhjk[ra + t] : 0.0;
            const double P = hj * hk * f, Pj = w->dH[ra + j] * hk * f;
            const double Pk = hj * w->dH[ra + k] * f, Pjk = hj * hk * df;
            any |= (P != 0.0) | (Pj != 0.0) | (Pk != 0.0) | (Pjk != 0.0);
            for (int i = g->abeg[a]; i < g->abeg[a + 1]; ++i) {
                const int s = g->amem[i];
                const size_t ia = (size_t)g->mang[s] * mx + t;
                const double A = w->A[ia];
                Tij[s] = A * Pj;
                Tik[s] = A * Pk;
                Tjk[s] = A * Pjk;
                Tc[s] = w->dA[ia] * P;
            }
        }
        if (!any) continue;
        hdnnp_pair_derivatives(nm, Tij, Tik, Tjk, Tc, uu, vv, cij, cik, ww, gj,
                               dG + 3 * ((size_t)nb->soff[k] + g->pos[w->nel[k]]), w->gi,
                               NULL);
    }
}

/* W[a][b] = dE/dG of the member (a, b), Wany[a] = row a not zero */
static void force_weights(const hdnnp_xgroup *g, hdnnp_sfx_scratch *w, const double *wsf)
{
    for (int i = 0; i < g->nrad * g->nang; ++i) w->W[i] = 0.0;
    for (int a = 0; a < g->nrad; ++a) w->Wany[a] = 0;
    for (int s = 0; s < g->n; ++s) {
        const double ws = wsf[g->sf[s]];
        w->W[g->mrad[s] * g->nang + g->mang[s]] += ws;
        w->Wany[g->mrad[s]] |= ws != 0.0;
    }
}

/* scalar derivatives of the contracted energy per pair of one run:
 * S_ij = dE/dr_ij, S_ik, S_jk and S_c = dE/dcos */
static void run_contract(const hdnnp_xgroup *g, hdnnp_sfx_scratch *w, int j, int kbeg, int L)
{
    const int mx = w->maxnn, nang = g->nang, narrow = g->narrow;
    double *restrict Sij = w->Sij, *restrict Sik = w->Sik, *restrict Sjk = w->Sjk;
    double *restrict Sc = w->Sc;
    for (int t = 0; t < L; ++t) { Sij[t] = 0.0; Sik[t] = 0.0; Sjk[t] = 0.0; Sc[t] = 0.0; }
    for (int a = 0; a < g->nrad; ++a) {
        const double hj = w->H[(size_t)a * mx + j], dhj = w->dH[(size_t)a * mx + j];
        if (!w->Wany[a] || (hj == 0.0 && dhj == 0.0)) continue;
        const double *restrict Hk = w->H + (size_t)a * mx + kbeg;
        const double *restrict dHk = w->dH + (size_t)a * mx + kbeg;
        const double *restrict hjk = w->hjk + (size_t)a * mx, *restrict dhjk = w->dhjk + (size_t)a * mx;
        const double *restrict W = w->W + (size_t)a * nang;
        const double *restrict A = w->A, *restrict dA = w->dA;
#pragma omp simd
        for (int t = 0; t < L; ++t) {
            double q = 0.0, qd = 0.0;
            for (int b = 0; b < nang; ++b) {
                q += W[b] * A[(size_t)b * mx + t];
                qd += W[b] * dA[(size_t)b * mx + t];
            }
            const double f = narrow ? hjk[t] : 1.0, df = narrow ? dhjk[t] : 0.0;
            const double hk = Hk[t];
            Sij[t] += q * dhj * hk * f;
            Sik[t] += q * hj * dHk[t] * f;
            Sjk[t] += q * hj * hk * df;
            Sc[t] += qd * hj * hk * f;
        }
    }
}

/* forces and strain derivative of one run from S_ij, S_ik, S_jk, S_c */
static void run_forces(const hdnnp_xgroup *g, const hdnnp_nbhd *nb, hdnnp_sfx_scratch *w,
                       int j, int kbeg, int L, double *F, double *V, double *Fi)
{
    const double rij = nb->r[j], u0 = nb->ux[j], u1 = nb->uy[j], u2 = nb->uz[j];
    const double dij0 = nb->dx[j], dij1 = nb->dy[j], dij2 = nb->dz[j];
    double *Fj = F + 3 * (size_t)nb->idx[j];
    double fi0 = 0.0, fi1 = 0.0, fi2 = 0.0, fj0 = 0.0, fj1 = 0.0, fj2 = 0.0;
    double v[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int t = 0; t < L; ++t) {
        const double tij = w->Sij[t], tik = w->Sik[t], tjk = w->Sjk[t], tc = w->Sc[t];
        if (tij == 0.0 && tik == 0.0 && tjk == 0.0 && tc == 0.0) continue;
        const int k = kbeg + t;
        const double rik = nb->r[k], cs = w->cs[t];
        const double v0 = nb->ux[k], v1 = nb->uy[k], v2 = nb->uz[k];
        const double dik0 = nb->dx[k], dik1 = nb->dy[k], dik2 = nb->dz[k];
        const double a_ij = tc / rij, a_ik = tc / rik;
        const double gij0 = tij * u0 + a_ij * (v0 - cs * u0);
        const double gij1 = tij * u1 + a_ij * (v1 - cs * u1);
        const double gij2 = tij * u2 + a_ij * (v2 - cs * u2);
        const double gik0 = tik * v0 + a_ik * (u0 - cs * v0);
        const double gik1 = tik * v1 + a_ik * (u1 - cs * v1);
        const double gik2 = tik * v2 + a_ik * (u2 - cs * v2);
        const double djk0 = dik0 - dij0, djk1 = dik1 - dij1, djk2 = dik2 - dij2;
        double gjk0 = 0.0, gjk1 = 0.0, gjk2 = 0.0;
        if (g->narrow) {
            const double c = tjk / w->rjk[t];
            gjk0 = c * djk0; gjk1 = c * djk1; gjk2 = c * djk2;
        }
        double *Fk = F + 3 * (size_t)nb->idx[k];
        fi0 -= gij0 + gik0; fi1 -= gij1 + gik1; fi2 -= gij2 + gik2;
        fj0 -= gjk0 - gij0; fj1 -= gjk1 - gij1; fj2 -= gjk2 - gij2;
        Fk[0] += gik0 + gjk0; Fk[1] += gik1 + gjk1; Fk[2] += gik2 + gjk2;
        v[0] += gij0 * dij0 + gik0 * dik0 + gjk0 * djk0;
        v[1] += gij0 * dij1 + gik0 * dik1 + gjk0 * djk1;
        v[2] += gij0 * dij2 + gik0 * dik2 + gjk0 * djk2;
        v[3] += gij1 * dij0 + gik1 * dik0 + gjk1 * djk0;
        v[4] += gij1 * dij1 + gik1 * dik1 + gjk1 * djk1;
        v[5] += gij1 * dij2 + gik1 * dik2 + gjk1 * djk2;
        v[6] += gij2 * dij0 + gik2 * dik0 + gjk2 * djk0;
        v[7] += gij2 * dij1 + gik2 * dik1 + gjk2 * djk1;
        v[8] += gij2 * dij2 + gik2 * dik2 + gjk2 * djk2;
    }
    Fj[0] += fj0; Fj[1] += fj1; Fj[2] += fj2;
    Fi[0] += fi0; Fi[1] += fi1; Fi[2] += fi2;
    for (int c = 0; c < 9; ++c) V[c] += v[c];
}

/* 1 if neighbour j of a group contributes to no member (outside every radial
 * function, values and derivatives) */
static int dead_j(const hdnnp_xgroup *g, const hdnnp_sfx_scratch *w, int j)
{
    for (int a = 0; a < g->nrad; ++a)
        if (w->H[(size_t)a * w->maxnn + j] != 0.0 || w->dH[(size_t)a * w->maxnn + j] != 0.0)
            return 0;
    return 1;
}

/* One angular group: radial tables, then one run per neighbour j.  Values and
 * derivatives (wsf == NULL) or forces (wsf != NULL). */
static void angular_group(const hdnnp_model *m, const hdnnp_xgroup *g, const hdnnp_nbhd *nb,
                          hdnnp_sfx_scratch *w, double *G, double *dG, const double *wsf,
                          double *F, double *V, double *Fi)
{
    int ja, jb, ka, kb;
    neighbour_range(g, nb, g->e1, &ja, &jb);
    neighbour_range(g, nb, g->e2, &ka, &kb);
    if (jb <= ja || kb <= ka) return;
    const int same = g->weighted || g->e1 == g->e2;
    angular_tables(g, nb, w, ja, jb);
    if (!same) angular_tables(g, nb, w, ka, kb);
    if (wsf) force_weights(g, w, wsf);
    if (dG)
        for (int s = 0; s < 3 * g->n; ++s) w->gi[s] = 0.0;
    for (int j = ja; j < jb; ++j) {
        const int kbeg = same ? j + 1 : ka, L = kb - kbeg;
        if (L <= 0 || nb->r[j] >= g->rmax || dead_j(g, w, j)) continue;
        run_setup(m, g, nb, w, j, kbeg, L);
        if (wsf) {
            run_contract(g, w, j, kbeg, L);
            run_forces(g, nb, w, j, kbeg, L, F, V, Fi);
        } else {
            run_values(g, w, j, kbeg, L, G);
            if (dG) run_derivatives(g, nb, w, j, kbeg, L, dG);
        }
    }
    if (dG)
        for (int s = 0; s < g->n; ++s) {
            double *pi = dG + 3 * (size_t)g->sf[s];
            pi[0] += w->gi[3 * s]; pi[1] += w->gi[3 * s + 1]; pi[2] += w->gi[3 * s + 2];
        }
}

/* ======================================================================= */
/* entry points                                                             */
/* ======================================================================= */

void hdnnp_sfx_values(const hdnnp_model *m, int ei, const hdnnp_nbhd *nb,
                      hdnnp_sfx_scratch *w, double *G, double *dG)
{
    const hdnnp_element *el = &m->el[ei];
    prepare(m, nb, w);
    for (int g = 0; g < el->nxg; ++g) {
        const hdnnp_xgroup *x = &el->xg[g];
        if (x->angular) angular_group(m, x, nb, w, G, dG, NULL, NULL, NULL, NULL);
        else radial_values(x, nb, w, G, dG);
    }
}

void hdnnp_sfx_forces(const hdnnp_model *m, int ei, const hdnnp_nbhd *nb,
                      hdnnp_sfx_scratch *w, const double *wsf, double *F, double *V,
                      double *Fi)
{
    const hdnnp_element *el = &m->el[ei];
    prepare(m, nb, w);
    for (int g = 0; g < el->nxg; ++g) {
        const hdnnp_xgroup *x = &el->xg[g];
        int any = 0;
        for (int s = 0; s < x->n; ++s) if (wsf[x->sf[s]] != 0.0) { any = 1; break; }
        if (!any) continue;
        if (x->angular) angular_group(m, x, nb, w, NULL, NULL, wsf, F, V, Fi);
        else radial_forces(x, nb, w, wsf, F, V, Fi);
    }
}
