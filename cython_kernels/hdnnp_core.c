/*
 * hdnnp_core.c — cutoff functions, symmetry-function groups, networks,
 * neighbour lists, energies and forces.  See hdnnp_core.h for conventions.
 */
#include "hdnnp_core.h"
#include "hdnnp_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

/* ======================================================================= */
/* cutoff functions (n2p2 cutoff_type 0..8)                                 */
/* ======================================================================= */

void hdnnp_cutoff_init(hdnnp_cutoff *c, int type, double rc, double alpha)
{
    c->type = type;
    c->rc = rc;
    /* HARD, TANHU and TANH have no inner cutoff (n2p2 ignores alpha there) */
    if (type == HDNNP_CUT_HARD || type == HDNNP_CUT_TANHU || type == HDNNP_CUT_TANH)
        alpha = 0.0;
    c->rci = alpha * rc;
    c->iw = 1.0 / (rc - c->rci);
}

void hdnnp_cutoff_eval(const hdnnp_cutoff *c, double r, double *fc, double *dfc)
{
    if (r >= c->rc) { *fc = 0.0; *dfc = 0.0; return; }
    switch (c->type) {
    case HDNNP_CUT_HARD:
        *fc = 1.0; *dfc = 0.0; return;
    case HDNNP_CUT_TANHU: {
        double t = tanh(1.0 - r / c->rc);
        *fc = t * t * t;
        *dfc = 3.0 * t * t * (t * t - 1.0) / c->rc;
        return;
    }
    case HDNNP_CUT_TANH: {
        /* c = (1/tanh(1))^3 so that f_c(0) = 1 */
        const double e = exp(1.0), ie = 1.0 / e;
        double k = (e + ie) / (e - ie);
        double t = tanh(1.0 - r / c->rc);
        k = k * k * k;
        *fc = k * t * t * t;
        *dfc = k * 3.0 * t * t * (t * t - 1.0) / c->rc;
        return;
    }
    default:
        break;
    }
    if (r < c->rci) { *fc = 1.0; *dfc = 0.0; return; }
    double x = (r - c->rci) * c->iw, f, df;
    switch (c->type) {
    case HDNNP_CUT_COS:
        f = 0.5 * (cos(M_PI * x) + 1.0);
        df = -0.5 * M_PI * sin(M_PI * x);
        break;
    case HDNNP_CUT_EXP: {
        double y = 1.0 - x * x;
        f = exp(1.0 - 1.0 / y);
        df = -2.0 * x * f / (y * y);
        break;
    }
    case HDNNP_CUT_POLY1:
        f = (2.0 * x - 3.0) * x * x + 1.0;
        df = 6.0 * x * (x - 1.0);
        break;
    case HDNNP_CUT_POLY2:
        f = ((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0;
        df = x * x * ((60.0 - 30.0 * x) * x - 30.0);
        break;
    case HDNNP_CUT_POLY3: {
        double x2 = x * x, xm = x - 1.0;
        f = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0;
        df = 140.0 * x2 * x * xm * xm * xm;
        break;
    }
    case HDNNP_CUT_POLY4: {
        double x2 = x * x, xm = x - 1.0, xm2 = xm * xm;
        f = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0;
        df = -630.0 * x2 * x2 * xm2 * xm2;
        break;
    }
    default:
        f = 0.0; df = 0.0;
    }
    *fc = f;
    *dfc = df * c->iw;
}

/* ======================================================================= */
/* model construction                                                       */
/* ======================================================================= */

static void *xcalloc(size_t n, size_t s) { return calloc(n ? n : 1, s); }

int hdnnp_sf_type_supported(int t)
{
    static const int types[HDNNP_N_SF_TYPES] = HDNNP_SF_TYPE_LIST;
    for (int i = 0; i < HDNNP_N_SF_TYPES; ++i)
        if (types[i] == t) return 1;
    return 0;
}

hdnnp_model *hdnnp_model_new(int nelements, int cutoff_type, double cutoff_alpha,
                             int normalize_nodes)
{
    hdnnp_model *m;
    if (nelements < 1 || nelements > HDNNP_MAX_ELEMENTS) return NULL;
    m = (hdnnp_model *)calloc(1, sizeof(hdnnp_model));
    if (!m) return NULL;
    m->nelements = nelements;
    m->cutoff_type = cutoff_type;
    m->cutoff_alpha = cutoff_alpha;
    m->normalize_nodes = normalize_nodes;
    for (int e = 0; e < nelements; ++e) m->el[e].escale = 1.0;
    return m;
}

static void free_element(hdnnp_element *el)
{
    for (int g = 0; g < el->nrg; ++g) {
        hdnnp_radial_group *r = &el->rg[g];
        free(r->sf); free(r->eta); free(r->rs);
    }
    for (int g = 0; g < el->nag; ++g) {
        hdnnp_angular_group *a = &el->ag[g];
        free(a->sf); free(a->mrad); free(a->mang); free(a->eta); free(a->rs);
        free(a->lam); free(a->zeta); free(a->izeta); free(a->pref);
    }
    free(el->rg); free(el->ag);
    hdnnp_sfx_free_groups(el);
    free(el->sf_type); free(el->sf_e1); free(el->sf_e2); free(el->sf_eta);
    free(el->sf_rs); free(el->sf_rc); free(el->sf_lam); free(el->sf_zeta);
    free(el->sa); free(el->sb); free(el->sc); free(el->gmin); free(el->gmax);
    free(el->nbpos); free(el->nbsf);
    free(el->size); free(el->act); free(el->w); free(el->woff);
    memset(el, 0, sizeof(*el));
}

void hdnnp_model_set_atomic_numbers(hdnnp_model *m, const int *z)
{
    for (int e = 0; e < m->nelements; ++e) m->z[e] = z[e];
}

void hdnnp_model_free(hdnnp_model *m)
{
    if (!m) return;
    for (int e = 0; e < m->nelements; ++e) free_element(&m->el[e]);
    free(m);
}

static int cutoff_index(hdnnp_model *m, double rc)
{
    for (int i = 0; i < m->ncut; ++i)
        if (m->cut_rc[i] == rc) return i;
    if (m->ncut >= 64) return -1;
    m->cut_rc[m->ncut] = rc;
    hdnnp_cutoff_init(&m->cut[m->ncut], m->cutoff_type, rc, m->cutoff_alpha);
    if (rc > m->rc_max) m->rc_max = rc;
    return m->ncut++;
}

/* Drop the SF definition of an element (keeping its network). */
static void reset_sf(hdnnp_element *el)
{
    hdnnp_element keep = *el;
    el->size = NULL; el->act = NULL; el->woff = NULL; el->w = NULL;
    free_element(el);
    el->size = keep.size; el->act = keep.act; el->woff = keep.woff; el->w = keep.w;
    el->nlayers = keep.nlayers; el->nweights = keep.nweights;
    el->maxsize = keep.maxsize; el->escale = keep.escale; el->eshift = keep.eshift;
}

static int alloc_sf(hdnnp_element *el, int nsf)
{
    el->nsf = nsf;
    el->sf_type = (int *)xcalloc(nsf, sizeof(int));
    el->sf_e1 = (int *)xcalloc(nsf, sizeof(int));
    el->sf_e2 = (int *)xcalloc(nsf, sizeof(int));
    el->sf_eta = (double *)xcalloc(nsf, sizeof(double));
    el->sf_rs = (double *)xcalloc(nsf, sizeof(double));
    el->sf_rc = (double *)xcalloc(nsf, sizeof(double));
    el->sf_lam = (double *)xcalloc(nsf, sizeof(double));
    el->sf_zeta = (double *)xcalloc(nsf, sizeof(double));
    el->rg = (hdnnp_radial_group *)xcalloc(nsf, sizeof(hdnnp_radial_group));
    el->ag = (hdnnp_angular_group *)xcalloc(nsf, sizeof(hdnnp_angular_group));
    el->sa = (double *)xcalloc(nsf, sizeof(double));
    el->sb = (double *)xcalloc(nsf, sizeof(double));
    el->sc = (double *)xcalloc(nsf, sizeof(double));
    el->gmin = (double *)xcalloc(nsf, sizeof(double));
    el->gmax = (double *)xcalloc(nsf, sizeof(double));
    if (!el->sf_type || !el->sf_e1 || !el->sf_e2 || !el->sf_eta || !el->sf_rs || !el->sf_rc ||
        !el->sf_lam || !el->sf_zeta || !el->rg || !el->ag || !el->sa || !el->sb || !el->sc ||
        !el->gmin || !el->gmax)
        return -1;
    for (int s = 0; s < nsf; ++s) { el->sb[s] = 1.0; el->gmin[s] = -HUGE_VAL; el->gmax[s] = HUGE_VAL; }
    el->has_scaling = 0;
    return 0;
}

/* type 2: member of the radial group (e1, cutoff) */
static void add_radial(hdnnp_element *el, int nsf, int s, const hdnnp_sf_param *p, int ic)
{
    int g;
    for (g = 0; g < el->nrg; ++g)
        if (el->rg[g].e1 == p->e1 && el->rg[g].icut == ic) break;
    hdnnp_radial_group *r = &el->rg[g];
    if (g == el->nrg) {
        el->nrg++;
        r->e1 = p->e1; r->icut = ic; r->rc = p->rc; r->n = 0;
        r->sf = (int *)xcalloc(nsf, sizeof(int));
        r->eta = (double *)xcalloc(nsf, sizeof(double));
        r->rs = (double *)xcalloc(nsf, sizeof(double));
    }
    r->sf[r->n] = s; r->eta[r->n] = p->eta; r->rs[r->n] = p->rs; r->n++;
}

/* types 3, 9: member of the angular group (type, e1, e2, cutoff) */
static int add_angular(hdnnp_model *m, hdnnp_element *el, int nsf, int s,
                       const hdnnp_sf_param *p, int ic)
{
    const int t = p->type, a = p->e1, b = p->e2;
    int g;
    for (g = 0; g < el->nag; ++g)
        if (el->ag[g].type == t && el->ag[g].e1 == a && el->ag[g].e2 == b && el->ag[g].icut == ic) break;
    hdnnp_angular_group *q = &el->ag[g];
    if (g == el->nag) {
        el->nag++;
        q->type = t; q->e1 = a; q->e2 = b; q->icut = ic; q->rc = p->rc;
        q->sf = (int *)xcalloc(nsf, sizeof(int));
        q->mrad = (int *)xcalloc(nsf, sizeof(int));
        q->mang = (int *)xcalloc(nsf, sizeof(int));
        q->eta = (double *)xcalloc(nsf, sizeof(double));
        q->rs = (double *)xcalloc(nsf, sizeof(double));
        q->lam = (double *)xcalloc(nsf, sizeof(double));
        q->zeta = (double *)xcalloc(nsf, sizeof(double));
        q->izeta = (int *)xcalloc(nsf, sizeof(int));
        q->pref = (double *)xcalloc(nsf, sizeof(double));
    }
    int ir, ia;
    for (ir = 0; ir < q->nrad; ++ir)
        if (q->eta[ir] == p->eta && q->rs[ir] == p->rs) break;
    if (ir == q->nrad) { q->eta[ir] = p->eta; q->rs[ir] = p->rs; q->nrad++; }
    for (ia = 0; ia < q->nang; ++ia)
        if (q->lam[ia] == p->lam && q->zeta[ia] == p->zeta) break;
    if (ia == q->nang) {
        double z = p->zeta;
        q->lam[ia] = p->lam; q->zeta[ia] = z;
        q->izeta[ia] = (z == floor(z) && z >= 1.0 && z < 1000.0) ? (int)z : -1;
        q->pref[ia] = pow(2.0, 1.0 - z);
        q->nang++;
    }
    if (q->nrad > 64 || q->nang > 64 || q->n >= 256) {
        snprintf(m->err, HDNNP_ERRLEN,
                 "more than 64 distinct (eta, r_s) or (lambda, zeta), or 256 members, in one angular group");
        return -1;
    }
    q->sf[q->n] = s; q->mrad[q->n] = ir; q->mang[q->n] = ia; q->n++;
    return 0;
}

/* Compact derivative layout in group-major order: the members of one SF
 * group are consecutive in the block of a neighbour, so the derivative
 * kernels write contiguous rows. */
static int build_layout(const hdnnp_model *m, hdnnp_element *el)
{
    const int nsf = el->nsf;
    el->nbpos = (int *)xcalloc((size_t)m->nelements * nsf, sizeof(int));
    el->nbsf = (int *)xcalloc((size_t)m->nelements * nsf, sizeof(int));
    if (!el->nbpos || !el->nbsf) return -1;
    for (int q = 0; q < m->nelements; ++q) {
        int c = 0, *pos = el->nbpos + (size_t)q * nsf, *sfs = el->nbsf + (size_t)q * nsf;
        for (int s = 0; s < nsf; ++s) pos[s] = -1;
        for (int g = 0; g < el->nrg; ++g)
            if (el->rg[g].e1 == q)
                for (int k = 0; k < el->rg[g].n; ++k) { pos[el->rg[g].sf[k]] = c; sfs[c++] = el->rg[g].sf[k]; }
        for (int g = 0; g < el->nag; ++g)
            if (el->ag[g].e1 == q || el->ag[g].e2 == q)
                for (int k = 0; k < el->ag[g].n; ++k) { pos[el->ag[g].sf[k]] = c; sfs[c++] = el->ag[g].sf[k]; }
        for (int g = 0; g < el->nxg; ++g) {
            hdnnp_xgroup *x = &el->xg[g];
            x->pos[q] = -1;
            if (!hdnnp_sfx_depends(x, q)) continue;
            x->pos[q] = c;
            for (int k = 0; k < x->n; ++k) { pos[x->sf[k]] = c; sfs[c++] = x->sf[k]; }
        }
        el->nbcount[q] = c;
    }
    return 0;
}

/* checks common to all types; stores the raw parameters of SF s */
static int check_sf(hdnnp_model *m, hdnnp_element *el, int s, hdnnp_sf_param *p)
{
    const int t = p->type;
    if (!hdnnp_sf_type_supported(t)) {
        snprintf(m->err, HDNNP_ERRLEN,
                 "symmetry function type %d is not supported (hpcnnp evaluates types "
                 "2, 3, 9, 12, 13, 20-25)", t);
        return -1;
    }
    const int nnb = (t == 2 || t == 20) ? 1 : (t == 3 || t == 9 || t == 21 || t == 22) ? 2 : 0;
    if ((nnb >= 1 && (p->e1 < 0 || p->e1 >= m->nelements)) ||
        (nnb == 2 && (p->e2 < 0 || p->e2 >= m->nelements))) {
        snprintf(m->err, HDNNP_ERRLEN, "symmetry function %d: neighbour element out of range", s + 1);
        return -1;
    }
    if (!(p->rc > 0.0)) {
        snprintf(m->err, HDNNP_ERRLEN, "symmetry function %d: cutoff radius must be > 0", s + 1);
        return -1;
    }
    if (nnb < 2) p->e2 = -1;
    if (nnb < 1) p->e1 = -1;
    if (nnb == 2 && p->e1 > p->e2) { int tmp = p->e1; p->e1 = p->e2; p->e2 = tmp; }
    if (t == 2) { p->lam = 0.0; p->zeta = 0.0; }
    el->sf_type[s] = t; el->sf_e1[s] = p->e1; el->sf_e2[s] = p->e2;
    el->sf_eta[s] = p->eta; el->sf_rs[s] = p->rs; el->sf_rc[s] = p->rc;
    el->sf_lam[s] = p->lam; el->sf_zeta[s] = p->zeta;
    return 0;
}

int hdnnp_model_set_sf(hdnnp_model *m, int e, int nsf, const hdnnp_sf_param *sf)
{
    if (e < 0 || e >= m->nelements) {
        snprintf(m->err, HDNNP_ERRLEN, "element index %d out of range", e);
        return -1;
    }
    hdnnp_element *el = &m->el[e];
    reset_sf(el);   /* SFs are set once; free a previous definition */
    if (alloc_sf(el, nsf) != 0) goto oom;
    if (nsf > m->maxsf) m->maxsf = nsf;
    for (int s = 0; s < nsf; ++s) {
        hdnnp_sf_param p = sf[s];
        if (check_sf(m, el, s, &p) != 0) return -1;
        const int compact = p.type >= 20;
        int ic = -1;
        if (!compact) {
            ic = cutoff_index(m, p.rc);
            if (ic < 0) {
                snprintf(m->err, HDNNP_ERRLEN, "more than 64 distinct cutoff radii");
                return -1;
            }
        } else if (p.rc > m->rc_max) {
            m->rc_max = p.rc;   /* compact SFs carry their own support, no f_c table */
        }
        if (p.type == 2) add_radial(el, nsf, s, &p, ic);
        else if (p.type == 3 || p.type == 9) { if (add_angular(m, el, nsf, s, &p, ic) != 0) return -1; }
        else if (hdnnp_sfx_add(m, el, nsf, s, &p, ic) != 0) return -1;
    }
    hdnnp_sfx_finalize(el);
    if (build_layout(m, el) != 0) goto oom;
    return 0;
oom:
    snprintf(m->err, HDNNP_ERRLEN, "out of memory while setting up the symmetry functions");
    return -1;
}

int hdnnp_model_set_scaling(hdnnp_model *m, int e, int scaling_type,
                            double smin, double smax, const double *stats)
{
    hdnnp_element *el = &m->el[e];
    if (e < 0 || e >= m->nelements || !el->sa) {
        snprintf(m->err, HDNNP_ERRLEN, "scaling set before symmetry functions (element %d)", e);
        return -1;
    }
    for (int s = 0; s < el->nsf; ++s) {
        double gmin = stats ? stats[4 * s] : 0.0, gmax = stats ? stats[4 * s + 1] : 0.0;
        double gmean = stats ? stats[4 * s + 2] : 0.0, gsig = stats ? stats[4 * s + 3] : 0.0;
        double a = 0.0, b = 1.0, c = 0.0;
        switch (scaling_type) {
        case HDNNP_SCALE_NONE: break;
        case HDNNP_SCALE_SCALE: a = smin; b = (smax - smin) / (gmax - gmin); c = gmin; break;
        case HDNNP_SCALE_CENTER: c = gmean; break;
        case HDNNP_SCALE_SCALECENTER: a = smin; b = (smax - smin) / (gmax - gmin); c = gmean; break;
        case HDNNP_SCALE_SCALESIGMA: a = smin; b = (smax - smin) / gsig; c = gmean; break;
        default:
            snprintf(m->err, HDNNP_ERRLEN, "unknown scaling type %d", scaling_type);
            return -1;
        }
        /* An SF without spread in the training data (G_max == G_min, or sigma
         * 0) carries no information; n2p2 divides by zero here and produces
         * inf/NaN.  hpcnnp maps it to scale_min (factor 0) instead. */
        if (!isfinite(b)) b = 0.0;
        el->sa[s] = a; el->sb[s] = b; el->sc[s] = c;
        el->gmin[s] = stats ? gmin : -HUGE_VAL;
        el->gmax[s] = stats ? gmax : HUGE_VAL;
    }
    el->has_scaling = stats != NULL;
    return 0;
}

int hdnnp_model_set_network(hdnnp_model *m, int e, int nlayers, const int *sizes,
                            const int *acts, const double *weights,
                            double escale, double eshift)
{
    hdnnp_element *el;
    if (e < 0 || e >= m->nelements) {
        snprintf(m->err, HDNNP_ERRLEN, "element index %d out of range", e);
        return -1;
    }
    el = &m->el[e];
    if (nlayers < 2 || sizes[nlayers - 1] != 1) {
        snprintf(m->err, HDNNP_ERRLEN, "a network needs >= 2 layers and one output neuron");
        return -1;
    }
    free(el->size); free(el->act); free(el->w); free(el->woff);
    el->nlayers = nlayers;
    el->size = (int *)xcalloc(nlayers, sizeof(int));
    el->act = (int *)xcalloc(nlayers, sizeof(int));
    el->woff = (int *)xcalloc(nlayers + 1, sizeof(int));
    el->maxsize = 0;
    int nw = 0;
    for (int k = 0; k < nlayers; ++k) {
        el->size[k] = sizes[k];
        el->act[k] = (k == 0) ? 0 : acts[k];
        if (sizes[k] > el->maxsize) el->maxsize = sizes[k];
        if (k > 0) { el->woff[k] = nw; nw += sizes[k - 1] * sizes[k] + sizes[k]; }
    }
    el->woff[nlayers] = nw;
    el->nweights = nw;
    el->w = (double *)xcalloc(nw, sizeof(double));
    if (weights) memcpy(el->w, weights, (size_t)nw * sizeof(double));
    el->escale = escale;
    el->eshift = eshift;
    return 0;
}

int hdnnp_model_set_weights(hdnnp_model *m, int e, const double *weights)
{
    if (e < 0 || e >= m->nelements || !m->el[e].w) {
        snprintf(m->err, HDNNP_ERRLEN, "network of element %d not defined", e);
        return -1;
    }
    memcpy(m->el[e].w, weights, (size_t)m->el[e].nweights * sizeof(double));
    return 0;
}

/* ======================================================================= */
/* neural network                                                            */
/* ======================================================================= */

static inline void activate(int act, double x, double *f, double *df)
{
    switch (act) {
    case HDNNP_ACT_LINEAR: *f = x; *df = 1.0; return;
    case HDNNP_ACT_TANH: { double t = tanh(x); *f = t; *df = 1.0 - t * t; return; }
    case HDNNP_ACT_LOGISTIC:
        if (x > 35.0) { *f = 1.0; *df = 0.0; }
        else if (x < -35.0) { *f = 0.0; *df = 0.0; }
        else { double s = 1.0 / (1.0 + exp(-x)); *f = s; *df = s * (1.0 - s); }
        return;
    case HDNNP_ACT_SOFTPLUS:
        if (x > 35.0) { *f = x; *df = 1.0; }
        else if (x < -35.0) { *f = 0.0; *df = 0.0; }
        else { double ex = exp(x); *f = log(1.0 + ex); *df = 1.0 / (1.0 + 1.0 / ex); }
        return;
    case HDNNP_ACT_RELU: if (x > 0.0) { *f = x; *df = 1.0; } else { *f = 0.0; *df = 0.0; } return;
    case HDNNP_ACT_GAUSSIAN: { double g = exp(-0.5 * x * x); *f = g; *df = -x * g; return; }
    case HDNNP_ACT_COS: *f = cos(x); *df = -sin(x); return;
    case HDNNP_ACT_REVLOGISTIC:
        if (x > 35.0) { *f = 0.0; *df = 0.0; }
        else if (x < -35.0) { *f = 1.0; *df = 0.0; }
        else { double s = 1.0 / (1.0 + exp(-x)); *f = 1.0 - s; *df = s * (s - 1.0); }
        return;
    case HDNNP_ACT_EXP: { double ex = exp(-x); *f = ex; *df = -ex; return; }
    case HDNNP_ACT_HARMONIC: *f = x * x; *df = 2.0 * x; return;
    default: *f = 0.0; *df = 0.0;
    }
}

/* work needs 2 * (sum of layer sizes) doubles */
double hdnnp_network(const hdnnp_model *m, int e, const double *gs,
                     double *dEdG, double *work)
{
    const hdnnp_element *el = &m->el[e];
    const int L = el->nlayers;
    /* y[k] and f'[k] for k >= 1 are stored consecutively in work */
    double *y = work, *dy;
    int off[64];
    int tot = 0;
    for (int k = 1; k < L; ++k) { off[k] = tot; tot += el->size[k]; }
    dy = work + tot;
    const double *yprev = gs;
    for (int k = 1; k < L; ++k) {
        const int nin = el->size[k - 1], nout = el->size[k];
        const double *W = el->w + el->woff[k];
        const double *b = W + (size_t)nin * nout;
        double *x = y + off[k];
        for (int n = 0; n < nout; ++n) x[n] = 0.0;
        for (int mm = 0; mm < nin; ++mm) {
            const double ym = yprev[mm];
            const double *Wm = W + (size_t)mm * nout;
            for (int n = 0; n < nout; ++n) x[n] += Wm[n] * ym;
        }
        const double inv = m->normalize_nodes ? 1.0 / nin : 1.0;
        for (int n = 0; n < nout; ++n) {
            double f, df;
            double xn = m->normalize_nodes ? (x[n] + b[n]) * inv : x[n] + b[n];
            activate(el->act[k], xn, &f, &df);
            x[n] = f;
            dy[off[k] + n] = df * inv;
        }
        yprev = x;
    }
    const double out = y[off[L - 1]];
    if (dEdG) {
        /* back-propagate: delta_k = dOut/dx_k (times 1/n_{k-1} if normalized) */
        double *delta = dy; /* reuse: dy[k] becomes delta[k] in place */
        delta[off[L - 1]] *= 1.0;
        for (int k = L - 1; k >= 1; --k) {
            const int nin = el->size[k - 1], nout = el->size[k];
            const double *W = el->w + el->woff[k];
            const double *dk = delta + off[k];
            if (k > 1) {
                double *dprev = delta + off[k - 1];
                for (int mm = 0; mm < nin; ++mm) {
                    const double *Wm = W + (size_t)mm * nout;
                    double s = 0.0;
                    for (int n = 0; n < nout; ++n) s += Wm[n] * dk[n];
                    dprev[mm] *= s;
                }
            } else {
                for (int mm = 0; mm < nin; ++mm) {
                    const double *Wm = W + (size_t)mm * nout;
                    double s = 0.0;
                    for (int n = 0; n < nout; ++n) s += Wm[n] * dk[n];
                    dEdG[mm] = s;
                }
            }
        }
    }
    return out;
}

/* Second derivative of the activation, for the force Jacobian. */
static inline double activation_d2(int act, double x, double f, double df)
{
    switch (act) {
    case HDNNP_ACT_TANH: return -2.0 * f * df;
    case HDNNP_ACT_LOGISTIC: return df * (1.0 - 2.0 * f);
    case HDNNP_ACT_SOFTPLUS: return (x > 35.0 || x < -35.0) ? 0.0 : df * (1.0 - df);
    case HDNNP_ACT_GAUSSIAN: return (x * x - 1.0) * f;
    case HDNNP_ACT_COS: return -f;
    case HDNNP_ACT_REVLOGISTIC: {
        if (x > 35.0 || x < -35.0) return 0.0;
        double s = 1.0 - f;              /* logistic */
        return s * (1.0 - s) * (2.0 * s - 1.0);
    }
    case HDNNP_ACT_EXP: return f;
    case HDNNP_ACT_HARMONIC: return 2.0;
    default: return 0.0;               /* linear, relu */
    }
}

int hdnnp_network_work_size(const hdnnp_model *m)
{
    int w = 0;
    for (int e = 0; e < m->nelements; ++e) {
        int t = 0;
        for (int k = 0; k < m->el[e].nlayers; ++k) t += m->el[e].size[k];
        if (t > w) w = t;
    }
    return 8 * w + 16;
}

/* Gradient of the network output with respect to the connections, and the
 * gradient of the directional input derivative D = v . dOut/dGs (v may be
 * NULL: only the output gradient).  grad_out and grad_d (nweights, n2p2
 * order) are ADDED to with factors a_out and a_d.  Returns D (0 if v NULL).
 * work: hdnnp_network_work_size doubles. */
double hdnnp_network_gradients(const hdnnp_model *m, int e, const double *gs,
                               const double *v, double a_out, double *grad_out,
                               double a_d, double *grad_d, double *work)
{
    /* Per layer k, neuron n (inv = 1/n_{k-1} with normalize_nodes, else 1):
     *   z = inv (sum_m W_mn y_m + b_n),  y = f(z)            (values)
     *   tz = inv sum_m W_mn ty_m,        ty = f'(z) tz       (tangent along v)
     * out = y_L, D = ty_L.  Reverse sweep with adjoints
     *   go = d out/dz,  gz = dD/dz,  gt = dD/dtz. */
    const hdnnp_element *el = &m->el[e];
    const int L = el->nlayers;
    int off[64], tot = 0;
    for (int k = 1; k < L; ++k) { off[k] = tot; tot += el->size[k]; }
    double *y = work, *d1 = y + tot, *d2 = d1 + tot, *tz = d2 + tot, *ty = tz + tot;
    double *go = ty + tot, *gz = go + tot, *gt = gz + tot;
    const double *yprev = gs, *typrev = v;
    for (int k = 1; k < L; ++k) {
        const int nin = el->size[k - 1], nout = el->size[k], o = off[k];
        const double *W = el->w + el->woff[k], *b = W + (size_t)nin * nout;
        const double inv = m->normalize_nodes ? 1.0 / nin : 1.0;
        for (int n = 0; n < nout; ++n) { y[o + n] = b[n]; tz[o + n] = 0.0; }
        for (int mm = 0; mm < nin; ++mm) {
            const double *Wm = W + (size_t)mm * nout;
            const double ym = yprev[mm], tym = typrev ? typrev[mm] : 0.0;
            for (int n = 0; n < nout; ++n) { y[o + n] += Wm[n] * ym; tz[o + n] += Wm[n] * tym; }
        }
        for (int n = 0; n < nout; ++n) {
            double f, df, z = y[o + n] * inv;
            activate(el->act[k], z, &f, &df);
            d1[o + n] = df;
            d2[o + n] = activation_d2(el->act[k], z, f, df);
            y[o + n] = f;
            tz[o + n] *= inv;
            ty[o + n] = df * tz[o + n];
        }
        yprev = y + o;
        typrev = v ? ty + o : NULL;
    }
    const double D = v ? ty[off[L - 1]] : 0.0;
    /* adjoints of the outputs of layer k: ao = dout/dy, ay = dD/dy, at = dD/dty;
     * stored temporarily in go/gz/gt of that layer before conversion */
    const int oL = off[L - 1];
    go[oL] = 1.0; gz[oL] = 0.0; gt[oL] = 1.0;
    for (int k = L - 1; k >= 1; --k) {
        const int nin = el->size[k - 1], nout = el->size[k], o = off[k];
        const double *W = el->w + el->woff[k];
        const double inv = m->normalize_nodes ? 1.0 / nin : 1.0;
        for (int n = 0; n < nout; ++n) {
            const double ao = go[o + n], ay = gz[o + n], at = gt[o + n];
            go[o + n] = ao * d1[o + n] * inv;                                 /* dout/d(sum) */
            gz[o + n] = (at * d2[o + n] * tz[o + n] + ay * d1[o + n]) * inv; /* dD/d(sum)   */
            gt[o + n] = at * d1[o + n] * inv;                                 /* dD/d(tsum)  */
        }
        const double *yin = (k > 1) ? y + off[k - 1] : gs;
        const double *tyin = (k > 1) ? ty + off[k - 1] : v;
        double *gwo = grad_out ? grad_out + el->woff[k] : NULL;
        double *gwd = grad_d ? grad_d + el->woff[k] : NULL;
        for (int mm = 0; mm < nin; ++mm) {
            const double ym = yin[mm], tym = tyin ? tyin[mm] : 0.0;
            if (gwo) {
                double *g = gwo + (size_t)mm * nout;
                const double c = a_out * ym;
                for (int n = 0; n < nout; ++n) g[n] += c * go[o + n];
            }
            if (gwd) {
                double *g = gwd + (size_t)mm * nout;
                const double c1 = a_d * ym, c2 = a_d * tym;
                for (int n = 0; n < nout; ++n) g[n] += c1 * gz[o + n] + c2 * gt[o + n];
            }
        }
        if (gwo) for (int n = 0; n < nout; ++n) gwo[(size_t)nin * nout + n] += a_out * go[o + n];
        if (gwd) for (int n = 0; n < nout; ++n) gwd[(size_t)nin * nout + n] += a_d * gz[o + n];
        if (k > 1) {
            const int op = off[k - 1];
            for (int mm = 0; mm < nin; ++mm) {
                const double *Wm = W + (size_t)mm * nout;
                double so = 0.0, sz = 0.0, st = 0.0;
                for (int n = 0; n < nout; ++n) {
                    so += Wm[n] * go[o + n];
                    sz += Wm[n] * gz[o + n];
                    st += Wm[n] * gt[o + n];
                }
                go[op + mm] = so; gz[op + mm] = sz; gt[op + mm] = st;
            }
        }
    }
    return D;
}

static int network_work_size(const hdnnp_model *m)
{
    int w = 0;
    for (int e = 0; e < m->nelements; ++e) {
        int t = 0;
        for (int k = 0; k < m->el[e].nlayers; ++k) t += m->el[e].size[k];
        if (t > w) w = t;
    }
    return 2 * w + 8;
}

/* ======================================================================= */
/* neighbour lists                                                           */
/* ======================================================================= */

void hdnnp_nlist_init(hdnnp_nlist *nl) { memset(nl, 0, sizeof(*nl)); }

void hdnnp_nlist_free(hdnnp_nlist *nl)
{
    free(nl->start); free(nl->estart); free(nl->idx); free(nl->d); free(nl->r);
    memset(nl, 0, sizeof(*nl));
}

static int nl_reserve(hdnnp_nlist *nl, size_t need)
{
    if (need <= nl->cap) return 0;
    size_t cap = nl->cap ? nl->cap : 1024;
    while (cap < need) cap *= 2;
    int *idx = (int *)realloc(nl->idx, cap * sizeof(int));
    if (!idx) return -1;
    nl->idx = idx;
    double *d = (double *)realloc(nl->d, cap * 3 * sizeof(double));
    if (!d) return -1;
    nl->d = d;
    double *r = (double *)realloc(nl->r, cap * sizeof(double));
    if (!r) return -1;
    nl->r = r;
    nl->cap = cap;
    return 0;
}

/* per-atom candidate buffer, sorted by element with a counting sort */
typedef struct { int idx, el; double d[3], r; } cand_t;

static int nl_push_atom(hdnnp_nlist *nl, int i, cand_t *c, int nc, int ne)
{
    int count[HDNNP_MAX_ELEMENTS + 1];
    int *es = nl->estart + (size_t)i * (ne + 1);
    size_t base = nl->n;
    if (nl_reserve(nl, base + (size_t)nc) != 0) return -1;
    memset(count, 0, sizeof(count));
    for (int q = 0; q < nc; ++q) count[c[q].el + 1]++;
    for (int e = 0; e < ne; ++e) count[e + 1] += count[e];
    for (int e = 0; e <= ne; ++e) es[e] = count[e];
    for (int q = 0; q < nc; ++q) {
        size_t p = base + (size_t)(count[c[q].el]++);
        nl->idx[p] = c[q].idx;
        nl->d[3 * p] = c[q].d[0]; nl->d[3 * p + 1] = c[q].d[1]; nl->d[3 * p + 2] = c[q].d[2];
        nl->r[p] = c[q].r;
    }
    nl->n = base + (size_t)nc;
    nl->start[i + 1] = (int)nl->n;
    return 0;
}

static int inv3(const double *a, double *ia)
{
    double det = a[0] * (a[4] * a[8] - a[5] * a[7]) - a[1] * (a[3] * a[8] - a[5] * a[6]) +
                 a[2] * (a[3] * a[7] - a[4] * a[6]);
    if (!(fabs(det) > 1e-12)) return -1;
    double id = 1.0 / det;
    ia[0] = (a[4] * a[8] - a[5] * a[7]) * id;
    ia[1] = (a[2] * a[7] - a[1] * a[8]) * id;
    ia[2] = (a[1] * a[5] - a[2] * a[4]) * id;
    ia[3] = (a[5] * a[6] - a[3] * a[8]) * id;
    ia[4] = (a[0] * a[8] - a[2] * a[6]) * id;
    ia[5] = (a[2] * a[3] - a[0] * a[5]) * id;
    ia[6] = (a[3] * a[7] - a[4] * a[6]) * id;
    ia[7] = (a[1] * a[6] - a[0] * a[7]) * id;
    ia[8] = (a[0] * a[4] - a[1] * a[3]) * id;
    return 0;
}

static int nl_alloc_heads(hdnnp_nlist *nl, int natoms, int ne, double rc)
{
    free(nl->start); free(nl->estart);
    nl->natoms = natoms;
    nl->nelements = ne;
    nl->rc = rc;
    nl->n = 0;
    nl->start = (int *)calloc((size_t)natoms + 1, sizeof(int));
    nl->estart = (int *)calloc((size_t)natoms * (ne + 1) + 1, sizeof(int));
    if (!nl->start || !nl->estart) return -1;
    return 0;
}

int hdnnp_nlist_build(hdnnp_nlist *nl, int n, const double *pos,
                      const double *cell, int periodic, const int *elem,
                      int nelements, double rc, double rmin, char *err)
{
    double h[9], ih[9], *s = NULL, *wpos = NULL;
    int nb[3], range[3];
    int *head = NULL, *next = NULL, *bin_of = NULL;
    cand_t *cand = NULL;
    size_t ccap = 256;
    int status = -1;
    const double rc2 = rc * rc, rmin2 = rmin * rmin;

    if (nelements > HDNNP_MAX_ELEMENTS) { snprintf(err, HDNNP_ERRLEN, "too many elements"); return -1; }
    if (nl_alloc_heads(nl, n, nelements, rc) != 0) goto oom;
    if (n == 0) return 0;
    for (int i = 0; i < n; ++i)
        if (elem[i] < 0 || elem[i] >= nelements) {
            snprintf(err, HDNNP_ERRLEN, "atom %d has an element index outside the potential", i + 1);
            return -1;
        }
    s = (double *)malloc((size_t)n * 3 * sizeof(double));
    wpos = (double *)malloc((size_t)n * 3 * sizeof(double));
    bin_of = (int *)malloc((size_t)n * sizeof(int));
    next = (int *)malloc((size_t)n * sizeof(int));
    cand = (cand_t *)malloc(ccap * sizeof(cand_t));
    if (!s || !wpos || !bin_of || !next || !cand) goto oom;

    if (periodic) {
        memcpy(h, cell, 9 * sizeof(double));
        for (int k = 0; k < 9; ++k)
            if (!isfinite(h[k])) { snprintf(err, HDNNP_ERRLEN, "the cell has a non-finite component"); goto done; }
        if (inv3(h, ih) != 0) { snprintf(err, HDNNP_ERRLEN, "the cell is singular (zero volume)"); goto done; }
        double vol = fabs(h[0] * (h[4] * h[8] - h[5] * h[7]) - h[1] * (h[3] * h[8] - h[5] * h[6]) +
                          h[2] * (h[3] * h[7] - h[4] * h[6]));
        for (int k = 0; k < 3; ++k) {
            /* distance between the faces spanned by the two other vectors */
            const double *a = h + 3 * ((k + 1) % 3), *b = h + 3 * ((k + 2) % 3);
            double cx = a[1] * b[2] - a[2] * b[1], cy = a[2] * b[0] - a[0] * b[2], cz = a[0] * b[1] - a[1] * b[0];
            double dk = vol / sqrt(cx * cx + cy * cy + cz * cz);
            nb[k] = (int)floor(dk / rc);
            if (nb[k] < 1) nb[k] = 1;
            if (nb[k] > 256) nb[k] = 256;
            range[k] = (int)ceil(rc * nb[k] / dk);
            if (range[k] < 1) range[k] = 1;
        }
        for (int i = 0; i < n; ++i) {
            const double *p = pos + 3 * i;
            for (int k = 0; k < 3; ++k) {
                double f = p[0] * ih[k] + p[1] * ih[3 + k] + p[2] * ih[6 + k];
                f -= floor(f);
                if (f >= 1.0) f -= 1.0;
                s[3 * i + k] = f;
            }
            for (int k = 0; k < 3; ++k)
                wpos[3 * i + k] = s[3 * i] * h[k] + s[3 * i + 1] * h[3 + k] + s[3 * i + 2] * h[6 + k];
        }
    } else {
        /* isolated cluster: bins over the bounding box, no images */
        double lo[3] = {HUGE_VAL, HUGE_VAL, HUGE_VAL}, hi[3] = {-HUGE_VAL, -HUGE_VAL, -HUGE_VAL};
        for (int i = 0; i < n; ++i)
            for (int k = 0; k < 3; ++k) {
                double v = pos[3 * i + k];
                if (!isfinite(v)) { snprintf(err, HDNNP_ERRLEN, "atom %d has a non-finite coordinate", i + 1); goto done; }
                if (v < lo[k]) lo[k] = v;
                if (v > hi[k]) hi[k] = v;
            }
        for (int k = 0; k < 3; ++k) {
            double len = hi[k] - lo[k] + 1e-9;
            nb[k] = (int)floor(len / rc);
            if (nb[k] < 1) nb[k] = 1;
            if (nb[k] > 256) nb[k] = 256;
            range[k] = 1;
            for (int i = 0; i < n; ++i) {
                double f = (pos[3 * i + k] - lo[k]) / len;
                s[3 * i + k] = f < 0 ? 0 : (f >= 1.0 ? 1.0 - 1e-16 : f);
            }
        }
        memcpy(wpos, pos, (size_t)n * 3 * sizeof(double));
        memset(h, 0, sizeof(h));
    }
    {
        const int nbin = nb[0] * nb[1] * nb[2];
        head = (int *)malloc((size_t)nbin * sizeof(int));
        if (!head) goto oom;
        for (int b = 0; b < nbin; ++b) head[b] = -1;
        /* insert in reverse so that each bin lists atoms in increasing order */
        for (int i = n - 1; i >= 0; --i) {
            int bx = (int)(s[3 * i] * nb[0]), by = (int)(s[3 * i + 1] * nb[1]), bz = (int)(s[3 * i + 2] * nb[2]);
            if (bx >= nb[0]) bx = nb[0] - 1;
            if (by >= nb[1]) by = nb[1] - 1;
            if (bz >= nb[2]) bz = nb[2] - 1;
            int b = (bx * nb[1] + by) * nb[2] + bz;
            bin_of[i] = b;
            next[i] = head[b];
            head[b] = i;
        }
        for (int i = 0; i < n; ++i) {
            int nc = 0;
            const int b = bin_of[i];
            const int bx = b / (nb[1] * nb[2]), by = (b / nb[2]) % nb[1], bz = b % nb[2];
            const double *pi = wpos + 3 * i;
            for (int ox = -range[0]; ox <= range[0]; ++ox) {
                int tx = bx + ox, sx = 0;
                if (periodic) { sx = (int)floor((double)tx / nb[0]); tx -= sx * nb[0]; }
                else if (tx < 0 || tx >= nb[0]) continue;
                for (int oy = -range[1]; oy <= range[1]; ++oy) {
                    int ty = by + oy, sy = 0;
                    if (periodic) { sy = (int)floor((double)ty / nb[1]); ty -= sy * nb[1]; }
                    else if (ty < 0 || ty >= nb[1]) continue;
                    for (int oz = -range[2]; oz <= range[2]; ++oz) {
                        int tz = bz + oz, sz = 0;
                        if (periodic) { sz = (int)floor((double)tz / nb[2]); tz -= sz * nb[2]; }
                        else if (tz < 0 || tz >= nb[2]) continue;
                        double T[3];
                        for (int k = 0; k < 3; ++k) T[k] = sx * h[k] + sy * h[3 + k] + sz * h[6 + k];
                        for (int j = head[(tx * nb[1] + ty) * nb[2] + tz]; j >= 0; j = next[j]) {
                            if (j == i && sx == 0 && sy == 0 && sz == 0) continue;
                            double dx = pi[0] - wpos[3 * j] - T[0];
                            double dy = pi[1] - wpos[3 * j + 1] - T[1];
                            double dz = pi[2] - wpos[3 * j + 2] - T[2];
                            double r2 = dx * dx + dy * dy + dz * dz;
                            if (r2 >= rc2) continue;
                            if (r2 < rmin2) {
                                snprintf(err, HDNNP_ERRLEN,
                                         "atoms %d and %d are %.4g apart (closer than %.3g)",
                                         i + 1, j + 1, sqrt(r2), rmin);
                                goto done;
                            }
                            if (nc == (int)ccap) {
                                ccap *= 2;
                                cand_t *nc2 = (cand_t *)realloc(cand, ccap * sizeof(cand_t));
                                if (!nc2) goto oom;
                                cand = nc2;
                            }
                            cand[nc].idx = j; cand[nc].el = elem[j];
                            cand[nc].d[0] = dx; cand[nc].d[1] = dy; cand[nc].d[2] = dz;
                            cand[nc].r = sqrt(r2);
                            nc++;
                        }
                    }
                }
            }
            if (nl_push_atom(nl, i, cand, nc, nelements) != 0) goto oom;
        }
    }
    status = 0;
    goto done;
oom:
    snprintf(err, HDNNP_ERRLEN, "out of memory while building the neighbour list");
    status = -1;
done:
    free(s); free(wpos); free(bin_of); free(next); free(head); free(cand);
    return status;
}

int hdnnp_nlist_from_pairs(hdnnp_nlist *nl, int natoms, const int *cstart,
                           const int *cidx, const double *xall, const int *eall,
                           int nelements, double rc, double rmin, char *err)
{
    const double rc2 = rc * rc, rmin2 = rmin * rmin;
    size_t ccap = 256;
    cand_t *cand;
    if (nl_alloc_heads(nl, natoms, nelements, rc) != 0) goto oom;
    cand = (cand_t *)malloc(ccap * sizeof(cand_t));
    if (!cand) goto oom;
    for (int i = 0; i < natoms; ++i) {
        int nc = 0;
        const double *pi = xall + 3 * i;
        for (int q = cstart[i]; q < cstart[i + 1]; ++q) {
            int j = cidx[q];
            double dx = pi[0] - xall[3 * j], dy = pi[1] - xall[3 * j + 1], dz = pi[2] - xall[3 * j + 2];
            double r2 = dx * dx + dy * dy + dz * dz;
            if (r2 >= rc2) continue;
            if (r2 < rmin2) {
                snprintf(err, HDNNP_ERRLEN, "atoms %d and %d are %.4g apart (closer than %.3g)",
                         i + 1, j + 1, sqrt(r2), rmin);
                free(cand);
                return -1;
            }
            if (eall[j] < 0 || eall[j] >= nelements) {
                snprintf(err, HDNNP_ERRLEN, "atom %d has an element index outside the potential", j + 1);
                free(cand);
                return -1;
            }
            if (nc == (int)ccap) {
                ccap *= 2;
                cand_t *c2 = (cand_t *)realloc(cand, ccap * sizeof(cand_t));
                if (!c2) { free(cand); goto oom; }
                cand = c2;
            }
            cand[nc].idx = j; cand[nc].el = eall[j];
            cand[nc].d[0] = dx; cand[nc].d[1] = dy; cand[nc].d[2] = dz; cand[nc].r = sqrt(r2);
            nc++;
        }
        if (nl_push_atom(nl, i, cand, nc, nelements) != 0) { free(cand); goto oom; }
    }
    free(cand);
    return 0;
oom:
    snprintf(err, HDNNP_ERRLEN, "out of memory while building the neighbour list");
    return -1;
}

/* ======================================================================= */
/* symmetry functions                                                        */
/* ======================================================================= */

/* Scratch space of one evaluation (sized for the largest neighbourhood).
 * Per-neighbour and per-partner arrays are laid out structure-of-arrays so
 * that the inner loops vectorise. */
typedef struct {
    int maxnn, ncut, maxrad, maxang;
    int bcap;             /* capacity of the pair batch: ANG_CHUNK + maxnn */
    int *bj;
    int *soff;            /* per neighbour: offset of its derivative block (in SF entries) */
    const unsigned char *tgt;  /* per neighbour: 1 if its derivative block is wanted; NULL:
                                  every block (and the central atom's) is wanted */
    double Fi[3];
    double *fc, *dfc;     /* ncut x maxnn */
    double *tab;          /* maxrad x maxnn: exp(-eta (r - rs)^2) per neighbour */
    double *nnw;          /* network work */
    double *gs, *dedg, *w;
    /* batch of partners k of one neighbour j (angular groups) */
    int *bk;
    double *brik, *bx2, *brjk, *bcs, *bfik, *bdfik, *bfjk, *bdfjk, *bFc;
    double *bER, *bA, *bdA, *bQ, *bQd;  /* maxrad|maxang x maxnn */
    double *bS0, *bSij, *bSik, *bSjk, *bTc, *bt;
    /* neighbours of the current atom, structure of arrays */
    double *dx, *dy, *dz, *rr, *ux, *uy, *uz, *tx2, *tcs;
    hdnnp_sfx_scratch *x;  /* groups of types 12, 13, 20-25 (NULL if none) */
} scratch_t;

static int max_neighbours(const hdnnp_nlist *nl)
{
    int mx = 0;
    for (int i = 0; i < nl->natoms; ++i) {
        int c = nl->start[i + 1] - nl->start[i];
        if (c > mx) mx = c;
    }
    return mx;
}

#define NB_ARRAYS 24
#define BATCH_CHUNK 256
static int scratch_alloc(scratch_t *w, const hdnnp_model *m, const hdnnp_nlist *nl)
{
    int maxrad = 1, maxang = 1;
    for (int e = 0; e < m->nelements; ++e)
        for (int g = 0; g < m->el[e].nag; ++g) {
            if (m->el[e].ag[g].nrad > maxrad) maxrad = m->el[e].ag[g].nrad;
            if (m->el[e].ag[g].nang > maxang) maxang = m->el[e].ag[g].nang;
        }
    memset(w, 0, sizeof(*w));
    w->maxnn = max_neighbours(nl) + 1;
    w->ncut = m->ncut > 0 ? m->ncut : 1;
    w->maxrad = maxrad;
    w->maxang = maxang;
    const size_t nn = (size_t)w->maxnn;
    w->fc = (double *)xcalloc(nn * w->ncut, sizeof(double));
    w->dfc = (double *)xcalloc(nn * w->ncut, sizeof(double));
    w->tab = (double *)xcalloc(nn * maxrad, sizeof(double));
    w->nnw = (double *)xcalloc(network_work_size(m), sizeof(double));
    w->gs = (double *)xcalloc(m->maxsf + 1, sizeof(double));
    w->dedg = (double *)xcalloc(m->maxsf + 1, sizeof(double));
    w->w = (double *)xcalloc(m->maxsf + 1, sizeof(double));
    w->bcap = BATCH_CHUNK + w->maxnn;
    const size_t nbc = (size_t)w->bcap;
    w->bk = (int *)xcalloc(3 * nbc, sizeof(int));
    w->bj = w->bk + nbc;
    w->soff = w->bj + nbc;
    /* one block for all per-partner / per-neighbour arrays */
    double *blk = (double *)xcalloc(nbc * (NB_ARRAYS + 3 * maxrad + 2 * maxang), sizeof(double));
    if (!w->fc || !w->dfc || !w->tab || !w->nnw || !w->gs || !w->dedg || !w->w || !w->bk || !blk)
        return -1;
    double **arr[] = {&w->brik, &w->bx2, &w->brjk, &w->bcs, &w->bfik, &w->bdfik, &w->bfjk,
                      &w->bdfjk, &w->bFc, &w->bS0, &w->bSij, &w->bSik, &w->bSjk, &w->bTc, &w->bt,
                      &w->dx, &w->dy, &w->dz, &w->rr, &w->ux, &w->uy, &w->uz, &w->tx2, &w->tcs};
    for (int a = 0; a < NB_ARRAYS; ++a) *arr[a] = blk + (size_t)a * nbc;
    for (int e = 0; e < m->nelements; ++e)
        if (m->el[e].nxg > 0) {
            w->x = hdnnp_sfx_scratch_new(m, w->maxnn);
            if (!w->x) return -1;
            break;
        }
    w->bER = blk + (size_t)NB_ARRAYS * nbc;
    w->bQ = w->bER + (size_t)maxrad * nbc;
    w->bQd = w->bQ + (size_t)maxrad * nbc;
    w->bA = w->bQd + (size_t)maxrad * nbc;
    w->bdA = w->bA + (size_t)maxang * nbc;
    return 0;
}

static void scratch_free(scratch_t *w)
{
    free(w->fc); free(w->dfc); free(w->tab); free(w->nnw); free(w->gs); free(w->dedg); free(w->w);
    free(w->bk); free(w->brik);
    hdnnp_sfx_scratch_free(w->x);
}

double hdnnp_vexp(double x) { return vexp(x); }

/* Cutoff function on a batch of distances (r >= rc gives 0, r < rci gives 1). */
void hdnnp_cutoff_batch(const hdnnp_cutoff *c, int n, const double *r, double *f, double *df)
{
    const double rc = c->rc, rci = c->rci, iw = c->iw;
    switch (c->type) {
    case HDNNP_CUT_POLY1:
#pragma omp simd
        for (int q = 0; q < n; ++q) {
            double x = (r[q] - rci) * iw;
            x = x < 0.0 ? 0.0 : x;
            const int in = r[q] < rc;
            const double ff = (2.0 * x - 3.0) * x * x + 1.0;
            const double dd = 6.0 * x * (x - 1.0) * iw;
            f[q] = in ? ff : 0.0; df[q] = in ? dd : 0.0;
        }
        return;
    case HDNNP_CUT_POLY2:
#pragma omp simd
        for (int q = 0; q < n; ++q) {
            double x = (r[q] - rci) * iw;
            x = x < 0.0 ? 0.0 : x;
            const int in = r[q] < rc;
            const double ff = ((15.0 - 6.0 * x) * x - 10.0) * x * x * x + 1.0;
            const double dd = x * x * ((60.0 - 30.0 * x) * x - 30.0) * iw;
            f[q] = in ? ff : 0.0; df[q] = in ? dd : 0.0;
        }
        return;
    case HDNNP_CUT_POLY3:
#pragma omp simd
        for (int q = 0; q < n; ++q) {
            double x = (r[q] - rci) * iw;
            x = x < 0.0 ? 0.0 : x;
            const int in = r[q] < rc;
            const double x2 = x * x, xm = x - 1.0;
            const double ff = (x * (x * (20.0 * x - 70.0) + 84.0) - 35.0) * x2 * x2 + 1.0;
            const double dd = 140.0 * x2 * x * xm * xm * xm * iw;
            f[q] = in ? ff : 0.0; df[q] = in ? dd : 0.0;
        }
        return;
    case HDNNP_CUT_POLY4:
#pragma omp simd
        for (int q = 0; q < n; ++q) {
            double x = (r[q] - rci) * iw;
            x = x < 0.0 ? 0.0 : x;
            const int in = r[q] < rc;
            const double x2 = x * x, xm = x - 1.0, xm2 = xm * xm;
            const double ff = (x * (x * ((315.0 - 70.0 * x) * x - 540.0) + 420.0) - 126.0) * x2 * x2 * x + 1.0;
            const double dd = -630.0 * x2 * x2 * xm2 * xm2 * iw;
            f[q] = in ? ff : 0.0; df[q] = in ? dd : 0.0;
        }
        return;
    default:
        for (int q = 0; q < n; ++q) hdnnp_cutoff_eval(c, r[q], &f[q], &df[q]);
    }
}

/* Cutoff values of all neighbours of atom i for every cutoff radius. */
static void atom_cutoffs(const hdnnp_model *m, const hdnnp_nlist *nl, int i, scratch_t *w)
{
    const int p0 = nl->start[i], nn = nl->start[i + 1] - p0;
    const double *D = nl->d + 3 * (size_t)p0, *R = nl->r + p0;
    for (int q = 0; q < nn; ++q) {
        const double r = R[q], ir = 1.0 / r;
        w->dx[q] = D[3 * q]; w->dy[q] = D[3 * q + 1]; w->dz[q] = D[3 * q + 2]; w->rr[q] = r;
        w->ux[q] = D[3 * q] * ir; w->uy[q] = D[3 * q + 1] * ir; w->uz[q] = D[3 * q + 2] * ir;
    }
    for (int c = 0; c < m->ncut; ++c)
        hdnnp_cutoff_batch(&m->cut[c], nn, nl->r + p0, w->fc + (size_t)c * w->maxnn,
                     w->dfc + (size_t)c * w->maxnn);
}

/* Per-neighbour radial factors exp(-eta (r - rs)^2) of an angular group. */
static void angular_table(const hdnnp_angular_group *ag, const int *es, const double *R,
                          scratch_t *w)
{
    for (int pass = 0; pass < 2; ++pass) {
        if (pass && ag->e1 == ag->e2) break;
        const int qa = pass ? es[ag->e2] : es[ag->e1], qb = pass ? es[ag->e2 + 1] : es[ag->e1 + 1];
        for (int a = 0; a < ag->nrad; ++a) {
            const double eta = ag->eta[a], rs = ag->rs[a];
            double *t = w->tab + (size_t)a * w->maxnn;
#pragma omp simd
            for (int q = qa; q < qb; ++q) {
                const double x = R[q] - rs;
                t[q] = vexp(-eta * x * x);
            }
        }
    }
}

/* Angular groups are evaluated on batches of neighbour pairs (j, k): the
 * pairs of several j are collected (branch-free compaction of the partners
 * inside the cutoff) until about ANG_CHUNK pairs are pending, then all
 * pair quantities are computed in vectorised loops. */
#define ANG_CHUNK BATCH_CHUNK

/* Append the partners k of neighbour j to the batch; returns the new size. */
static int angular_collect(const hdnnp_angular_group *ag, int j, int kbeg, int kend,
                           scratch_t *w, int nb)
{
    const double rc = ag->rc, rc2 = rc * rc;
    const int narrow = ag->type == 3, mx = w->maxnn;
    const double *restrict fc = w->fc + (size_t)ag->icut * mx;
    const double *restrict dfc = w->dfc + (size_t)ag->icut * mx;
    const double *restrict ux = w->ux, *restrict uy = w->uy, *restrict uz = w->uz;
    const double *restrict dxa = w->dx, *restrict dya = w->dy, *restrict dza = w->dz;
    double *restrict tx2 = w->tx2, *restrict tcs = w->tcs;
    int *restrict bk = w->bk, *restrict bj = w->bj;
    double *restrict brik = w->brik, *restrict bx2 = w->bx2, *restrict bcs = w->bcs;
    double *restrict bfik = w->bfik, *restrict bdfik = w->bdfik;
    const double dx = dxa[j], dy = dya[j], dz = dza[j];
    const double ujx = ux[j], ujy = uy[j], ujz = uz[j];
    const int cnt = kend - kbeg;
#pragma omp simd
    for (int t = 0; t < cnt; ++t) {
        const int k = kbeg + t;
        const double a0 = dxa[k] - dx, a1 = dya[k] - dy, a2 = dza[k] - dz;
        tx2[t] = a0 * a0 + a1 * a1 + a2 * a2;
        tcs[t] = ujx * ux[k] + ujy * uy[k] + ujz * uz[k];
    }
    for (int t = 0; t < cnt; ++t) {
        const int k = kbeg + t;
        const double rik = w->rr[k];
        const int ok = (rik < rc) & (!narrow | (tx2[t] < rc2));
        bk[nb] = k;
        bj[nb] = j;
        brik[nb] = rik;
        bx2[nb] = tx2[t];
        bcs[nb] = tcs[t];
        bfik[nb] = fc[k];
        bdfik[nb] = dfc[k];
        nb += ok;
    }
    return nb;
}

/* Pair quantities of a batch: r_jk, f_c(r_jk), F_c = f_ij f_ik f_jk,
 * radial factors ER[a] and angular parts A[a], dA/dcos[a]. */
static void angular_process(const hdnnp_model *m, const hdnnp_angular_group *ag, int nb,
                           scratch_t *w)
{
    const int narrow = ag->type == 3, mx = w->bcap;
    const double *restrict fc = w->fc + (size_t)ag->icut * w->maxnn;
    const int *restrict bk = w->bk, *restrict bj = w->bj;
    double *restrict brjk = w->brjk, *restrict bfjk = w->bfjk, *restrict bdfjk = w->bdfjk;
    double *restrict bFc = w->bFc;
    if (narrow) {
#pragma omp simd
        for (int n = 0; n < nb; ++n) brjk[n] = sqrt(w->bx2[n]);
        hdnnp_cutoff_batch(&m->cut[ag->icut], nb, brjk, bfjk, bdfjk);
    } else {
        for (int n = 0; n < nb; ++n) { brjk[n] = 0.0; bfjk[n] = 1.0; bdfjk[n] = 0.0; }
    }
    for (int n = 0; n < nb; ++n) bFc[n] = fc[bj[n]] * w->bfik[n] * bfjk[n];
    for (int a = 0; a < ag->nrad; ++a) {
        const double *restrict t = w->tab + (size_t)a * w->maxnn;
        const double eta = ag->eta[a], rs = ag->rs[a];
        double *restrict er = w->bER + (size_t)a * mx;
        for (int n = 0; n < nb; ++n) er[n] = t[bj[n]] * t[bk[n]];
        if (narrow) {
#pragma omp simd
            for (int n = 0; n < nb; ++n) {
                const double x = brjk[n] - rs;
                er[n] *= vexp(-eta * x * x);
            }
        }
    }
    for (int a = 0; a < ag->nang; ++a)
        hdnnp_cospow_batch(ag->lam[a], ag->zeta[a], ag->izeta[a], ag->pref[a], nb, w->bcs,
                           w->bA + (size_t)a * mx, w->bdA + (size_t)a * mx, w->bt);
}

/* Values (and, with dG, derivatives) of all members of an angular group
 * from a processed batch. */
static void angular_values(const hdnnp_angular_group *ag, int nb, scratch_t *w,
                           const double *D, const hdnnp_element *el, double *G, double *dG)
{
    const int nsf = el->nsf;
    const int *posj = el->nbpos + (size_t)ag->e1 * nsf, *posk = el->nbpos + (size_t)ag->e2 * nsf;
    const int mx = w->bcap;
    for (int s = 0; s < ag->n; ++s) {
        const double *restrict A = w->bA + (size_t)ag->mang[s] * mx;
        const double *restrict E = w->bER + (size_t)ag->mrad[s] * mx;
        const double *restrict Fc = w->bFc;
        double sum = 0.0;
#pragma omp simd reduction(+ : sum)
        for (int n = 0; n < nb; ++n) sum += A[n] * E[n] * Fc[n];
        G[ag->sf[s]] += sum;
    }
    if (!dG) return;
    const int narrow = ag->type == 3, nm = ag->n, bc = w->bcap;
    const double *fcut = w->fc + (size_t)ag->icut * w->maxnn, *dfcut = w->dfc + (size_t)ag->icut * w->maxnn;
    /* rows of this group's members in the neighbour blocks (consecutive) */
    const int pj0 = posj[ag->sf[0]], pk0 = posk[ag->sf[0]];
    double Tc[256], Tij[256], Tik[256], Tjk[256];
    const unsigned char *tgt = w->tgt;
    for (int n = 0; n < nb; ++n) {
        const int j = w->bj[n], k = w->bk[n];
        if (tgt && !(tgt[j] | tgt[k])) continue;   /* touches no wanted block */
        const double rij = w->rr[j], u0 = w->ux[j], u1 = w->uy[j], u2 = w->uz[j];
        const double rik = w->brik[n], rjk = w->brjk[n], cs = w->bcs[n];
        const double *dij = D + 3 * (size_t)j, *dik = D + 3 * (size_t)k;
        const double v0 = w->ux[k], v1 = w->uy[k], v2 = w->uz[k];
        const double cij0 = (v0 - cs * u0) / rij, cij1 = (v1 - cs * u1) / rij, cij2 = (v2 - cs * u2) / rij;
        const double cik0 = (u0 - cs * v0) / rik, cik1 = (u1 - cs * v1) / rik, cik2 = (u2 - cs * v2) / rik;
        double w0 = 0.0, w1 = 0.0, w2 = 0.0;
        if (narrow) {
            w0 = (dik[0] - dij[0]) / rjk; w1 = (dik[1] - dij[1]) / rjk; w2 = (dik[2] - dij[2]) / rjk;
        }
        const double fij = fcut[j], dfij = dfcut[j];
        const double fik = w->bfik[n], dfik = w->bdfik[n], fjk = w->bfjk[n], dfjk = w->bdfjk[n];
        const double Fc = w->bFc[n];
        const double Fij = dfij * fik * fjk, Fik = fij * dfik * fjk, Fjk = fij * fik * dfjk;
        /* scalar derivatives of every member */
        for (int s = 0; s < nm; ++s) {
            const int a = ag->mang[s], rr = ag->mrad[s];
            const double er = w->bER[(size_t)rr * bc + n], eta2 = 2.0 * ag->eta[rr], rs = ag->rs[rr];
            const double Ae = w->bA[(size_t)a * bc + n] * er;
            Tc[s] = w->bdA[(size_t)a * bc + n] * er * Fc;
            Tij[s] = Ae * (Fij - eta2 * (rij - rs) * Fc);
            Tik[s] = Ae * (Fik - eta2 * (rik - rs) * Fc);
            Tjk[s] = narrow ? Ae * (Fjk - eta2 * (rjk - rs) * Fc) : 0.0;
        }
        const double uu[3] = {u0, u1, u2}, vv[3] = {v0, v1, v2}, ww[3] = {w0, w1, w2};
        const double cij[3] = {cij0, cij1, cij2}, cik[3] = {cik0, cik1, cik2};
        hdnnp_pair_derivatives(nm, Tij, Tik, Tjk, Tc, uu, vv, cij, cik, ww,
                               dG + 3 * ((size_t)w->soff[j] + pj0),
                               dG + 3 * ((size_t)w->soff[k] + pk0), dG, ag->sf);
    }
}

/* Forces and strain derivative from a processed batch, contracted with
 * wsf[s] = dE/dG_s.  Accumulates into F (all atoms) and V (9). */
static void angular_forces(const hdnnp_angular_group *ag, int nb, scratch_t *w,
                           const double *D, const int *IDX, const double *wsf,
                           double *F, double *V)
{
    const int mx = w->bcap, nrad = ag->nrad, narrow = ag->type == 3;
    for (int a = 0; a < nrad; ++a) {
        double *Q = w->bQ + (size_t)a * mx, *Qd = w->bQd + (size_t)a * mx;
        for (int n = 0; n < nb; ++n) { Q[n] = 0.0; Qd[n] = 0.0; }
    }
    for (int s = 0; s < ag->n; ++s) {
        const double ws = wsf[ag->sf[s]];
        if (ws == 0.0) continue;
        double *restrict Q = w->bQ + (size_t)ag->mrad[s] * mx, *restrict Qd = w->bQd + (size_t)ag->mrad[s] * mx;
        const double *restrict A = w->bA + (size_t)ag->mang[s] * mx, *restrict dA = w->bdA + (size_t)ag->mang[s] * mx;
#pragma omp simd
        for (int n = 0; n < nb; ++n) { Q[n] += ws * A[n]; Qd[n] += ws * dA[n]; }
    }
    double *restrict S0 = w->bS0, *restrict Sij = w->bSij, *restrict Sik = w->bSik;
    double *restrict Sjk = w->bSjk, *restrict Tc = w->bTc;
    for (int n = 0; n < nb; ++n) { S0[n] = 0.0; Sij[n] = 0.0; Sik[n] = 0.0; Sjk[n] = 0.0; Tc[n] = 0.0; }
    const int *restrict bj = w->bj;
    for (int a = 0; a < nrad; ++a) {
        const double *restrict Q = w->bQ + (size_t)a * mx, *restrict Qd = w->bQd + (size_t)a * mx;
        const double *restrict E = w->bER + (size_t)a * mx;
        const double eta2 = 2.0 * ag->eta[a], rs = ag->rs[a];
        const double *restrict rik = w->brik, *restrict rjk = w->brjk, *restrict rr = w->rr;
#pragma omp simd
        for (int n = 0; n < nb; ++n) {
            const double qe = Q[n] * E[n];
            Tc[n] += Qd[n] * E[n];
            S0[n] += qe;
            Sij[n] += qe * eta2 * (rr[bj[n]] - rs);
            Sik[n] += qe * eta2 * (rik[n] - rs);
            Sjk[n] += qe * eta2 * (rjk[n] - rs);
        }
    }
    const double *fcut = w->fc + (size_t)ag->icut * w->maxnn, *dfcut = w->dfc + (size_t)ag->icut * w->maxnn;
    double Fi0 = 0.0, Fi1 = 0.0, Fi2 = 0.0;
    for (int n = 0; n < nb; ++n) {
        const int j = bj[n], k = w->bk[n];
        const double rij = w->rr[j], rik = w->brik[n], cs = w->bcs[n], Fc = w->bFc[n];
        const double u0 = w->ux[j], u1 = w->uy[j], u2 = w->uz[j];
        const double v0 = w->ux[k], v1 = w->uy[k], v2 = w->uz[k];
        const double fij = fcut[j], fik = w->bfik[n], fjk = w->bfjk[n];
        const double *dij = D + 3 * (size_t)j, *dik = D + 3 * (size_t)k;
        const double tc = Tc[n] * Fc;
        const double Tij = S0[n] * dfcut[j] * fik * fjk - Sij[n] * Fc;
        const double Tik = S0[n] * fij * w->bdfik[n] * fjk - Sik[n] * Fc;
        const double a_ij = tc / rij, a_ik = tc / rik;
        const double gij0 = Tij * u0 + a_ij * (v0 - cs * u0);
        const double gij1 = Tij * u1 + a_ij * (v1 - cs * u1);
        const double gij2 = Tij * u2 + a_ij * (v2 - cs * u2);
        const double gik0 = Tik * v0 + a_ik * (u0 - cs * v0);
        const double gik1 = Tik * v1 + a_ik * (u1 - cs * v1);
        const double gik2 = Tik * v2 + a_ik * (u2 - cs * v2);
        const double djk0 = dik[0] - dij[0], djk1 = dik[1] - dij[1], djk2 = dik[2] - dij[2];
        double gjk0 = 0.0, gjk1 = 0.0, gjk2 = 0.0;
        if (narrow) {
            const double Tjk = (S0[n] * fij * fik * w->bdfjk[n] - Sjk[n] * Fc) / w->brjk[n];
            gjk0 = Tjk * djk0; gjk1 = Tjk * djk1; gjk2 = Tjk * djk2;
        }
        double *Fj = F + 3 * (size_t)IDX[j], *Fk = F + 3 * (size_t)IDX[k];
        Fi0 -= gij0 + gik0; Fi1 -= gij1 + gik1; Fi2 -= gij2 + gik2;
        Fj[0] -= gjk0 - gij0; Fj[1] -= gjk1 - gij1; Fj[2] -= gjk2 - gij2;
        Fk[0] += gik0 + gjk0; Fk[1] += gik1 + gjk1; Fk[2] += gik2 + gjk2;
        V[0] += gij0 * dij[0] + gik0 * dik[0] + gjk0 * djk0;
        V[1] += gij0 * dij[1] + gik0 * dik[1] + gjk0 * djk1;
        V[2] += gij0 * dij[2] + gik0 * dik[2] + gjk0 * djk2;
        V[3] += gij1 * dij[0] + gik1 * dik[0] + gjk1 * djk0;
        V[4] += gij1 * dij[1] + gik1 * dik[1] + gjk1 * djk1;
        V[5] += gij1 * dij[2] + gik1 * dik[2] + gjk1 * djk2;
        V[6] += gij2 * dij[0] + gik2 * dik[0] + gjk2 * djk0;
        V[7] += gij2 * dij[1] + gik2 * dik[1] + gjk2 * djk1;
        V[8] += gij2 * dij[2] + gik2 * dik[2] + gjk2 * djk2;
    }
    w->Fi[0] += Fi0; w->Fi[1] += Fi1; w->Fi[2] += Fi2;
}

/* The neighbourhood of atom i for the group kernels of hdnnp_sfx.c (after
 * atom_cutoffs). */
static hdnnp_nbhd atom_nbhd(const hdnnp_nlist *nl, int i, const scratch_t *w)
{
    hdnnp_nbhd nb;
    const int p0 = nl->start[i];
    nb.nn = nl->start[i + 1] - p0;
    nb.ne = nl->nelements;
    nb.es = nl->estart + (size_t)i * (nl->nelements + 1);
    nb.r = w->rr;
    nb.dx = w->dx; nb.dy = w->dy; nb.dz = w->dz;
    nb.ux = w->ux; nb.uy = w->uy; nb.uz = w->uz;
    nb.idx = nl->idx + p0;
    nb.soff = w->soff;
    nb.fc = w->fc; nb.dfc = w->dfc;
    nb.ldc = w->maxnn;
    return nb;
}

/* Radial/angular values of atom i (G zeroed by the caller); if dG != NULL
 * also the derivatives dG[slot][s][3] (slot 0 = i, neighbour q at w->soff[q]).
 * With w->tgt set (only for elements without hdnnp_sfx groups) the blocks of
 * neighbours q with tgt[q] == 0 and the central atom's block receive only the
 * terms of the pairs that also touch a wanted neighbour (they are scratch then);
 * values and the wanted blocks are exactly those of the unfiltered call. */
static void atom_sf(const hdnnp_model *m, const hdnnp_nlist *nl, int i, int ei,
                    scratch_t *w, double *G, double *dG)
{
    const hdnnp_element *el = &m->el[ei];
    const int ne = nl->nelements, p0 = nl->start[i], mx = w->maxnn;
    const int *es = nl->estart + (size_t)i * (ne + 1);
    const int nsf = el->nsf;
    const double *R = nl->r + p0, *D = nl->d + 3 * (size_t)p0;

    for (int g = 0; g < el->nrg; ++g) {
        const hdnnp_radial_group *rg = &el->rg[g];
        const int qa = es[rg->e1], qb = es[rg->e1 + 1];
        const double *fc = w->fc + (size_t)rg->icut * mx, *dfc = w->dfc + (size_t)rg->icut * mx;
        for (int k = 0; k < rg->n; ++k) {
            const double eta = rg->eta[k], rs = rg->rs[k];
            double sum = 0.0;
#pragma omp simd reduction(+ : sum)
            for (int q = qa; q < qb; ++q) {
                const double x = R[q] - rs;
                sum += vexp(-eta * x * x) * fc[q];
            }
            G[rg->sf[k]] += sum;
            if (!dG) continue;
            double *gi = dG + 3 * (size_t)rg->sf[k];
            for (int q = qa; q < qb; ++q) {
                const double r = R[q];
                if (r >= rg->rc || (w->tgt && !w->tgt[q])) continue;
                const double x = r - rs;
                const double s = vexp(-eta * x * x) * (dfc[q] - 2.0 * eta * x * fc[q]) / r;
                double *gj = dG + 3 * ((size_t)w->soff[q] + el->nbpos[(size_t)rg->e1 * nsf + rg->sf[k]]);
                const double *d = D + 3 * q;
                gi[0] += s * d[0]; gi[1] += s * d[1]; gi[2] += s * d[2];
                gj[0] -= s * d[0]; gj[1] -= s * d[1]; gj[2] -= s * d[2];
            }
        }
    }

    for (int g = 0; g < el->nag; ++g) {
        const hdnnp_angular_group *ag = &el->ag[g];
        const int ja = es[ag->e1], jb = es[ag->e1 + 1], ka = es[ag->e2], kb = es[ag->e2 + 1];
        angular_table(ag, es, R, w);
        int nb = 0;
        for (int j = ja; j < jb; ++j) {
            if (R[j] >= ag->rc) continue;
            nb = angular_collect(ag, j, (ag->e1 == ag->e2) ? j + 1 : ka, kb, w, nb);
            if (nb >= ANG_CHUNK) {
                angular_process(m, ag, nb, w);
                angular_values(ag, nb, w, D, el, G, dG);
                nb = 0;
            }
        }
        if (nb) {
            angular_process(m, ag, nb, w);
            angular_values(ag, nb, w, D, el, G, dG);
        }
    }
    if (el->nxg) {
        const hdnnp_nbhd xnb = atom_nbhd(nl, i, w);
        hdnnp_sfx_values(m, ei, &xnb, w->x, G, dG);
    }
}

/* Second pass of the fast path: forces from the SF derivatives contracted on
 * the fly with wsf[s] = dE_i/dG_s (physical, raw SFs).  Forces and dE/de are
 * accumulated. */
static void atom_forces(const hdnnp_model *m, const hdnnp_nlist *nl, int i, int ei,
                        scratch_t *w, const double *wsf, double *F, double *dEde)
{
    const hdnnp_element *el = &m->el[ei];
    const int ne = nl->nelements, p0 = nl->start[i], mx = w->maxnn;
    const int *es = nl->estart + (size_t)i * (ne + 1);
    const double *R = nl->r + p0, *D = nl->d + 3 * (size_t)p0;
    const int *IDX = nl->idx + p0;
    double V[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    w->Fi[0] = w->Fi[1] = w->Fi[2] = 0.0;

    for (int g = 0; g < el->nrg; ++g) {
        const hdnnp_radial_group *rg = &el->rg[g];
        const int qa = es[rg->e1], qb = es[rg->e1 + 1];
        const double *fc = w->fc + (size_t)rg->icut * mx, *dfc = w->dfc + (size_t)rg->icut * mx;
        double *t = w->bt;
        for (int q = qa; q < qb; ++q) t[q - qa] = 0.0;
        for (int k = 0; k < rg->n; ++k) {
            const double ws = wsf[rg->sf[k]], eta = rg->eta[k], rs = rg->rs[k];
            if (ws == 0.0) continue;
#pragma omp simd
            for (int q = qa; q < qb; ++q) {
                const double x = R[q] - rs;
                t[q - qa] += ws * vexp(-eta * x * x) * (dfc[q] - 2.0 * eta * x * fc[q]);
            }
        }
        double Fi0 = 0.0, Fi1 = 0.0, Fi2 = 0.0;
        for (int q = qa; q < qb; ++q) {
            const double r = R[q];
            if (r >= rg->rc) continue;
            const double tq = t[q - qa] / r;
            const double *d = D + 3 * q;
            const double g0 = tq * d[0], g1 = tq * d[1], g2 = tq * d[2];
            double *Fj = F + 3 * (size_t)IDX[q];
            Fi0 -= g0; Fi1 -= g1; Fi2 -= g2;
            Fj[0] += g0; Fj[1] += g1; Fj[2] += g2;
            V[0] += g0 * d[0]; V[1] += g0 * d[1]; V[2] += g0 * d[2];
            V[3] += g1 * d[0]; V[4] += g1 * d[1]; V[5] += g1 * d[2];
            V[6] += g2 * d[0]; V[7] += g2 * d[1]; V[8] += g2 * d[2];
        }
        w->Fi[0] += Fi0; w->Fi[1] += Fi1; w->Fi[2] += Fi2;
    }

    for (int g = 0; g < el->nag; ++g) {
        const hdnnp_angular_group *ag = &el->ag[g];
        const int ja = es[ag->e1], jb = es[ag->e1 + 1], ka = es[ag->e2], kb = es[ag->e2 + 1];
        int any = 0;
        for (int s = 0; s < ag->n; ++s) if (wsf[ag->sf[s]] != 0.0) { any = 1; break; }
        if (!any) continue;
        angular_table(ag, es, R, w);
        int nb = 0;
        for (int j = ja; j < jb; ++j) {
            if (R[j] >= ag->rc) continue;
            nb = angular_collect(ag, j, (ag->e1 == ag->e2) ? j + 1 : ka, kb, w, nb);
            if (nb >= ANG_CHUNK) {
                angular_process(m, ag, nb, w);
                angular_forces(ag, nb, w, D, IDX, wsf, F, V);
                nb = 0;
            }
        }
        if (nb) {
            angular_process(m, ag, nb, w);
            angular_forces(ag, nb, w, D, IDX, wsf, F, V);
        }
    }
    if (el->nxg) {
        const hdnnp_nbhd xnb = atom_nbhd(nl, i, w);
        hdnnp_sfx_forces(m, ei, &xnb, w->x, wsf, F, V, w->Fi);
    }
    double *Fi = F + 3 * (size_t)i;
    Fi[0] += w->Fi[0]; Fi[1] += w->Fi[1]; Fi[2] += w->Fi[2];
    if (dEde)
        for (int k = 0; k < 9; ++k) dEde[k] += V[k];
}

/* number of SF entries of the compact derivative block of atom i */
static int64_t atom_dg_entries(const hdnnp_model *m, const hdnnp_nlist *nl, const int *elem, int i)
{
    const hdnnp_element *el = &m->el[elem[i]];
    const int ne = nl->nelements;
    const int *es = nl->estart + (size_t)i * (ne + 1);
    int64_t tot = el->nsf;
    for (int e = 0; e < ne; ++e) tot += (int64_t)(es[e + 1] - es[e]) * el->nbcount[e];
    return tot;
}

int64_t hdnnp_dgdr_size(const hdnnp_model *m, const hdnnp_nlist *nl, const int *elem)
{
    int64_t tot = 0;
    for (int i = 0; i < nl->natoms; ++i) tot += 3 * atom_dg_entries(m, nl, elem, i);
    return tot;
}

int hdnnp_symmetry_functions(const hdnnp_model *m, const hdnnp_nlist *nl,
                             const int *elem, double *G, int ldg,
                             double *dgdr, int64_t *dgoff)
{
    scratch_t w;
    if (scratch_alloc(&w, m, nl) != 0) { scratch_free(&w); return -1; }
    int64_t off = 0;
    const int ne = nl->nelements;
    for (int i = 0; i < nl->natoms; ++i) {
        const int ei = elem[i];
        const hdnnp_element *el = &m->el[ei];
        double *Gi = G + (size_t)i * ldg;
        memset(Gi, 0, (size_t)ldg * sizeof(double));
        double *dGi = NULL;
        if (dgdr) {
            const int64_t sz = 3 * atom_dg_entries(m, nl, elem, i);
            const int *es = nl->estart + (size_t)i * (ne + 1);
            int so = el->nsf;
            for (int e = 0; e < ne; ++e)
                for (int q = es[e]; q < es[e + 1]; ++q) { w.soff[q] = so; so += el->nbcount[e]; }
            dgoff[i] = off;
            dGi = dgdr + off;
            memset(dGi, 0, (size_t)sz * sizeof(double));
            off += sz;
        }
        atom_cutoffs(m, nl, i, &w);
        atom_sf(m, nl, i, ei, &w, Gi, dGi);
    }
    if (dgdr) dgoff[nl->natoms] = off;
    scratch_free(&w);
    return 0;
}

int hdnnp_symmetry_functions_target(const hdnnp_model *m, const hdnnp_nlist *nl,
                                    const int *elem, int nsub, const int *atoms,
                                    int target, double *G, int ldg, double *dgt)
{
    scratch_t w;
    if (scratch_alloc(&w, m, nl) != 0) { scratch_free(&w); return -1; }
    const int ne = nl->nelements, et = elem[target];
    int64_t cap = 1;
    for (int k = 0; k < nsub; ++k) {
        const int64_t sz = 3 * (atom_dg_entries(m, nl, elem, atoms[k]) + m->el[elem[atoms[k]]].nsf);
        if (sz > cap) cap = sz;
    }
    double *buf = (double *)malloc((size_t)cap * sizeof(double));
    unsigned char *tgt = (unsigned char *)calloc((size_t)w.maxnn, 1);
    if (!buf || !tgt) { free(buf); free(tgt); scratch_free(&w); return -1; }
    for (int k = 0; k < nsub; ++k) {
        const int i = atoms[k], ei = elem[i];
        const hdnnp_element *el = &m->el[ei];
        const int nsf = el->nsf, p0 = nl->start[i], nn = nl->start[i + 1] - p0;
        const int *es = nl->estart + (size_t)i * (ne + 1), *idx = nl->idx + p0;
        double *Gi = G + (size_t)k * ldg, *Di = dgt + 3 * (size_t)k * ldg;
        memset(Gi, 0, (size_t)ldg * sizeof(double));
        memset(Di, 0, 3 * (size_t)ldg * sizeof(double));
        /* the central atom itself and elements with hdnnp_sfx groups: the complete
         * compact layout; else the central block, one scratch block shared by the
         * neighbours that are not the target, then a block per image of the target */
        const int full = i == target || el->nxg > 0;
        int so = full ? nsf : 2 * nsf;
        for (int e = 0; e < ne; ++e)
            for (int q = es[e]; q < es[e + 1]; ++q) {
                tgt[q] = idx[q] == target;
                if (full || tgt[q]) { w.soff[q] = so; so += el->nbcount[e]; }
                else w.soff[q] = nsf;
            }
        memset(buf, 0, 3 * (size_t)so * sizeof(double));
        w.tgt = full ? NULL : tgt;
        atom_cutoffs(m, nl, i, &w);
        atom_sf(m, nl, i, ei, &w, Gi, buf);
        /* sum in slot order: the central atom (if it is the target), then its images */
        if (i == target)
            for (int s = 0; s < 3 * nsf; ++s) Di[s] += buf[s];
        const int cnt = el->nbcount[et], *sfs = el->nbsf + (size_t)et * nsf;
        for (int q = 0; q < nn; ++q) {
            if (!tgt[q]) continue;
            const double *b = buf + 3 * (size_t)w.soff[q];
            for (int c = 0; c < cnt; ++c) {
                double *d = Di + 3 * (size_t)sfs[c];
                d[0] += b[3 * c]; d[1] += b[3 * c + 1]; d[2] += b[3 * c + 2];
            }
        }
    }
    free(buf);
    free(tgt);
    scratch_free(&w);
    return 0;
}

int64_t hdnnp_scale(const hdnnp_model *m, int natoms, const int *elem,
                    double *G, int ldg, hdnnp_ew *ew, int64_t ewcap)
{
    int64_t nw = 0;
    for (int i = 0; i < natoms; ++i) {
        const hdnnp_element *el = &m->el[elem[i]];
        double *Gi = G + (size_t)i * ldg;
        for (int s = 0; s < el->nsf; ++s) {
            const double g = Gi[s];
            if (g + HDNNP_EW_MARGIN < el->gmin[s] || g - HDNNP_EW_MARGIN > el->gmax[s]) {
                if (nw < ewcap) {
                    ew[nw].atom = i; ew[nw].sf = s; ew[nw].value = g;
                    ew[nw].gmin = el->gmin[s]; ew[nw].gmax = el->gmax[s];
                }
                nw++;
            }
            Gi[s] = el->sa[s] + el->sb[s] * (g - el->sc[s]);
        }
    }
    return nw;
}

int hdnnp_energy_forces_full(const hdnnp_model *m, const hdnnp_nlist *nl,
                             const int *elem, double *eatom, double *forces,
                             double *dEde, hdnnp_ew *ew, int64_t ewcap,
                             int64_t *nwarn, double *G, double *Gs,
                             double *dEdGs, double *out, int ldg)
{
    scratch_t w;
    int64_t nw = 0;
    if (scratch_alloc(&w, m, nl) != 0) { scratch_free(&w); return -1; }
    for (int i = 0; i < nl->natoms; ++i) {
        const int ei = elem[i];
        const hdnnp_element *el = &m->el[ei];
        const int nsf = el->nsf;
        double *g = w.gs;
        memset(g, 0, (size_t)nsf * sizeof(double));
        atom_cutoffs(m, nl, i, &w);
        atom_sf(m, nl, i, ei, &w, g, NULL);
        if (G) memcpy(G + (size_t)i * ldg, g, (size_t)nsf * sizeof(double));
        for (int s = 0; s < nsf; ++s) {
            const double v = g[s];
            if (v + HDNNP_EW_MARGIN < el->gmin[s] || v - HDNNP_EW_MARGIN > el->gmax[s]) {
                if (nw < ewcap) {
                    ew[nw].atom = i; ew[nw].sf = s; ew[nw].value = v;
                    ew[nw].gmin = el->gmin[s]; ew[nw].gmax = el->gmax[s];
                }
                nw++;
            }
            g[s] = el->sa[s] + el->sb[s] * (v - el->sc[s]);
        }
        if (Gs) memcpy(Gs + (size_t)i * ldg, g, (size_t)nsf * sizeof(double));
        const double o = hdnnp_network(m, ei, g, w.dedg, w.nnw);
        if (out) out[i] = o;
        if (dEdGs) memcpy(dEdGs + (size_t)i * ldg, w.dedg, (size_t)nsf * sizeof(double));
        eatom[i] = o * el->escale + el->eshift;
        if (forces) {
            for (int s = 0; s < nsf; ++s) w.w[s] = w.dedg[s] * el->sb[s] * el->escale;
            atom_forces(m, nl, i, ei, &w, w.w, forces, dEde);
        }
    }
    if (nwarn) *nwarn = nw;
    scratch_free(&w);
    return 0;
}

int hdnnp_energy_forces(const hdnnp_model *m, const hdnnp_nlist *nl,
                        const int *elem, double *eatom, double *forces,
                        double *dEde, hdnnp_ew *ew, int64_t ewcap,
                        int64_t *nwarn)
{
    return hdnnp_energy_forces_full(m, nl, elem, eatom, forces, dEde, ew, ewcap,
                                    nwarn, NULL, NULL, NULL, NULL, 0);
}
