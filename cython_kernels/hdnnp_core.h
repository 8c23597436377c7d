/*
 * hdnnp_core — the compute core of hpcnnp, plain C99, no Python.
 *
 * Behler–Parrinello high-dimensional neural network potentials (HDNNP,
 * Behler & Parrinello, PRL 98, 146401 (2007), doi:10.1103/PhysRevLett.98.146401)
 * with n2p2's conventions (Singraber et al., JCTC 15, 1827 (2019),
 * doi:10.1021/acs.jctc.8b00770): atom-centred symmetry functions (SF) of every
 * 2G type n2p2 evaluates -- 2 (radial), 3 (narrow angular), 9 (wide angular),
 * the element-weighted 12 (radial) and 13 (narrow angular), and the
 * polynomial family 20-25 with compact support (Bircher, Singraber, Dellago,
 * Mach. Learn.: Sci. Technol. 2, 035026 (2021), doi:10.1088/2632-2153/abf817)
 * -- all n2p2 cutoff functions and compact-function cores, SF scaling,
 * per-element feed-forward networks.  Types 2/3/9 have hand-tuned kernels in
 * hdnnp_core.c; the others are evaluated by the generic group kernels of
 * hdnnp_sfx.c.
 *
 * Two front doors use this file: the Cython extension (hpcnnp._core) and the
 * LAMMPS plugin pair style.  Units are whatever the potential uses (n2p2 is
 * unit-agnostic): positions/lengths L, energies E; forces E/L.
 *
 * Conventions
 *  - Element indices are n2p2's: rank of the atomic number among the
 *    potential's elements.
 *  - SFs of an element are stored in n2p2's sorted order; groups (SFs sharing
 *    type, neighbour element(s) and cutoff radius) are evaluated in one
 *    neighbour loop.
 *  - A neighbour list gives, for each central atom i, neighbours j (index into
 *    the "all atoms" array, which may contain ghost atoms) with the vector
 *    d_ij = r_i - r_j (image shift included) and |d_ij|, sorted by element.
 *  - The strain derivative dE/de_ab = sum over all relative vectors d of
 *    (dE/dd)_a d_b.  The Cauchy stress is (dE/de)/V, the LAMMPS virial is
 *    -(dE/de).
 */
#ifndef HDNNP_CORE_H
#define HDNNP_CORE_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define HDNNP_MAX_ELEMENTS 16
#define HDNNP_ERRLEN 512
/* An SF value counts as extrapolation only beyond this absolute margin
 * around [G_min, G_max] (n2p2: 1000 * DBL_EPSILON). */
#define HDNNP_EW_MARGIN (1000.0 * 2.220446049250313e-16)

enum hdnnp_cutoff_type {
    HDNNP_CUT_HARD = 0, HDNNP_CUT_COS = 1, HDNNP_CUT_TANHU = 2,
    HDNNP_CUT_TANH = 3, HDNNP_CUT_EXP = 4, HDNNP_CUT_POLY1 = 5,
    HDNNP_CUT_POLY2 = 6, HDNNP_CUT_POLY3 = 7, HDNNP_CUT_POLY4 = 8
};

enum hdnnp_scaling_type {
    HDNNP_SCALE_NONE = 0, HDNNP_SCALE_SCALE = 1, HDNNP_SCALE_CENTER = 2,
    HDNNP_SCALE_SCALECENTER = 3, HDNNP_SCALE_SCALESIGMA = 4
};

/* activation letters of n2p2: l t s p r g c S e h */
enum hdnnp_activation {
    HDNNP_ACT_LINEAR = 0, HDNNP_ACT_TANH, HDNNP_ACT_LOGISTIC, HDNNP_ACT_SOFTPLUS,
    HDNNP_ACT_RELU, HDNNP_ACT_GAUSSIAN, HDNNP_ACT_COS, HDNNP_ACT_REVLOGISTIC,
    HDNNP_ACT_EXP, HDNNP_ACT_HARMONIC
};

/* ---- symmetry-function types -------------------------------------------- */
/* The n2p2 SF types this core evaluates: the C side of the SF type table
 * hpcnnp.descriptors.sftypes (a test checks that both agree). */
#define HDNNP_SF_TYPE_LIST {2, 3, 9, 12, 13, 20, 21, 22, 23, 24, 25}
#define HDNNP_N_SF_TYPES 11
/* 1 if the core evaluates SF type t, else 0 */
int hdnnp_sf_type_supported(int t);

/* core functions of the compact SFs (n2p2 subtype p1 ... p4, e; "pNa" =
 * pN with asym = 1) */
enum hdnnp_core_function {
    HDNNP_CORE_POLY1 = 1, HDNNP_CORE_POLY2 = 2, HDNNP_CORE_POLY3 = 3,
    HDNNP_CORE_POLY4 = 4, HDNNP_CORE_EXP = 5
};

/* Parameters of one SF (one symfunction_short line).  Fields a type does not
 * have are ignored (neighbour elements: -1). */
typedef struct {
    int type;                 /* n2p2 type number */
    int e1, e2;               /* neighbour element indices */
    double eta, rs, rc;       /* Gaussian width 1/L^2, shift L, cutoff radius L */
    double lam, zeta;         /* angular (1 + lam cos)^zeta */
    double rl;                /* compact types: left radius L (rc = right radius) */
    double angle_l, angle_r;  /* compact angular types: interval in degrees */
    int core, asym;           /* compact types: core function, asymmetric flag */
} hdnnp_sf_param;

/* ---- cutoff function ---------------------------------------------------- */
typedef struct {
    int type;
    double rc;      /* outer cutoff radius */
    double rci;     /* inner cutoff radius alpha*rc */
    double iw;      /* 1/(rc - rci) */
} hdnnp_cutoff;

void hdnnp_cutoff_init(hdnnp_cutoff *c, int type, double rc, double alpha);
/* f_c(r) and df_c/dr; r >= rc gives 0, 0 */
void hdnnp_cutoff_eval(const hdnnp_cutoff *c, double r, double *fc, double *dfc);

/* ---- symmetry-function groups ------------------------------------------- */
typedef struct {
    int e1;            /* neighbour element */
    int icut;          /* index of the cutoff radius in model->cut */
    double rc;
    int n;             /* members */
    int *sf;           /* sorted SF index of each member */
    double *eta, *rs;
} hdnnp_radial_group;

typedef struct {
    int type;          /* 3 (narrow) or 9 (wide) */
    int e1, e2;        /* neighbour elements, e1 <= e2 */
    int icut;
    double rc;
    int n;             /* members */
    int *sf;           /* sorted SF index of each member */
    int *mrad;         /* member -> unique (eta, rs) index */
    int *mang;         /* member -> unique (lambda, zeta) index */
    int nrad;          /* unique (eta, rs) */
    double *eta, *rs;
    int nang;          /* unique (lambda, zeta) */
    double *lam, *zeta;
    int *izeta;        /* integer zeta or -1 */
    double *pref;      /* 2^(1-zeta) */
} hdnnp_angular_group;

/* A function of one distance or angle inside the groups of hdnnp_sfx.c. */
enum hdnnp_fn_kind { HDNNP_FN_GAUSS = 0, HDNNP_FN_COMPACT = 1, HDNNP_FN_COSPOW = 2 };
typedef struct {
    int kind;
    double eta, rs;                      /* GAUSS: exp(-eta (r - rs)^2) f_c(r) */
    double left, right, centre, scale;   /* COMPACT: core(|a - centre| scale) on (left, right) */
    int core, asym;
    double lam, zeta, pref;              /* COSPOW: pref (1 + lam cos)^zeta, pref = 2^(1-zeta) */
    int izeta;                           /* integer zeta or -1 */
} hdnnp_fn1d;

/* SFs of types 12, 13, 20-25 that are evaluated in one neighbour (pair) loop:
 * same type and neighbour element(s) (all neighbours for weighted types), and
 * for the Gaussian types 12/13 the same cutoff radius.  Member s is the
 * product of radial function rad[mrad[s]] of every distance (r_ij, r_ik and,
 * for narrow types, r_jk) and, for angular types, of angular function
 * ang[mang[s]] of the angle theta_ijk (times Z_j [Z_k] for weighted types). */
typedef struct {
    int type, angular, narrow, weighted;
    int e1, e2;          /* neighbour elements (e1 <= e2), -1 if weighted */
    int icut;            /* cutoff index of Gaussian groups, -1 for compact ones */
    double rmax;         /* largest radius of the members */
    int n;               /* members */
    int *sf, *mrad, *mang;
    int *abeg, *amem;    /* members by radial function: amem[abeg[a] .. abeg[a+1]) */
    int nrad, nang;
    hdnnp_fn1d *rad, *ang;
    int pos[HDNNP_MAX_ELEMENTS];   /* row of member 0 in the derivative block of a
                                      neighbour of element q, -1 if independent of q */
} hdnnp_xgroup;

/* ---- one element: SFs, scaling, network ---------------------------------- */
typedef struct {
    int nsf;
    int nrg, nag, nxg;
    hdnnp_radial_group *rg;
    hdnnp_angular_group *ag;
    hdnnp_xgroup *xg;  /* groups of types 12, 13, 20-25 */
    /* raw SF parameters in sorted order (kept for reference/debugging) */
    int *sf_type, *sf_e1, *sf_e2;
    double *sf_eta, *sf_rs, *sf_rc, *sf_lam, *sf_zeta;
    /* compact derivative layout: SFs that depend on a neighbour of element
     * q are nbsf[q][0..nbcount[q]-1]; nbpos[q*nsf + s] = position or -1 */
    int nbcount[HDNNP_MAX_ELEMENTS];
    int *nbpos, *nbsf;
    /* scaling: Gs = sa + sb*(G - sc); extrapolation range [gmin, gmax] */
    double *sa, *sb, *sc, *gmin, *gmax;
    int has_scaling;
    /* network */
    int nlayers;       /* number of layers incl. input and output */
    int *size;         /* neurons per layer, size[0] = nsf, size[nlayers-1] = 1 */
    int *act;          /* activation per layer 1..nlayers-1 (act[0] unused) */
    int nweights;
    double *w;         /* n2p2 connection order */
    int *woff;         /* offset of layer k's weight block in w (k>=1) */
    int maxsize;
    /* physical atomic energy = out*escale + eshift */
    double escale, eshift;
} hdnnp_element;

typedef struct {
    int nelements;
    int cutoff_type;
    double cutoff_alpha;
    int normalize_nodes;
    int ncut;                         /* distinct SF cutoff radii */
    double cut_rc[64];
    hdnnp_cutoff cut[64];
    double rc_max;
    int maxsf;
    hdnnp_element el[HDNNP_MAX_ELEMENTS];
    char symbol[HDNNP_MAX_ELEMENTS][4];   /* element symbols (set by loaders) */
    int z[HDNNP_MAX_ELEMENTS];            /* atomic numbers: weights of types 12, 13, 23-25 */
    char err[HDNNP_ERRLEN];
} hdnnp_model;

/* Create an empty model; returns NULL on allocation failure. */
hdnnp_model *hdnnp_model_new(int nelements, int cutoff_type, double cutoff_alpha,
                             int normalize_nodes);
void hdnnp_model_free(hdnnp_model *m);

/* Atomic numbers of the elements (needed before weighted SFs are set). */
void hdnnp_model_set_atomic_numbers(hdnnp_model *m, const int *z);
/* Define the SFs of element e (nsf parameter sets, already in n2p2's sorted
 * order).  Returns 0 or -1 (message in m->err). */
int hdnnp_model_set_sf(hdnnp_model *m, int e, int nsf, const hdnnp_sf_param *sf);
/* Scaling of element e: stats is nsf x 4 (min, max, mean, sigma), row major. */
int hdnnp_model_set_scaling(hdnnp_model *m, int e, int scaling_type,
                            double smin, double smax, const double *stats);
/* Network of element e: nlayers incl. input/output; acts[k] for layers
 * k = 1..nlayers-1 (acts[0] ignored); weights in n2p2 order (may be NULL:
 * zeros).  escale/eshift map the output to a physical atomic energy. */
int hdnnp_model_set_network(hdnnp_model *m, int e, int nlayers, const int *sizes,
                            const int *acts, const double *weights,
                            double escale, double eshift);
int hdnnp_model_set_weights(hdnnp_model *m, int e, const double *weights);

/* Read an n2p2 potential folder (input.nn, scaling.data, weights.ZZZ.data).
 * Returns NULL with a message naming file and line in err (HDNNP_ERRLEN). */
hdnnp_model *hdnnp_model_load_n2p2(const char *dir, char *err);
/* Atomic number of an element symbol (0 if unknown). */
int hdnnp_atomic_number(const char *symbol);
/* The loader's line layout of SF type t (which = 0: the fields after
 * "Ec t", "[x]" optional; 1: n2p2's sort key after the type), NULL if t is
 * unknown. */
const char *hdnnp_sf_layout(int type, int which);

/* ---- neighbour list ------------------------------------------------------ */
typedef struct {
    int natoms;        /* central atoms */
    int nelements;
    int *start;        /* natoms+1 offsets into idx/d/r */
    int *estart;       /* natoms*(nelements+1): element e of atom i occupies
                          [start[i]+estart[i*(ne+1)+e], start[i]+estart[i*(ne+1)+e+1]) */
    int *idx;          /* neighbour atom index */
    double *d;         /* 3 per neighbour: r_i - r_j */
    double *r;         /* |d| */
    size_t n, cap;
    double rc;
} hdnnp_nlist;

void hdnnp_nlist_init(hdnnp_nlist *nl);
void hdnnp_nlist_free(hdnnp_nlist *nl);

/* Neighbour list of a structure with cell lists.  pos: n x 3, cell: 3 x 3
 * rows = lattice vectors (ignored when periodic == 0), elem: element index
 * per atom.  All periodic images within rc are included (also images of i
 * itself when the cell is smaller than rc).  Returns 0, or -1 with an error
 * in err (e.g. two atoms closer than rmin, singular cell). */
int hdnnp_nlist_build(hdnnp_nlist *nl, int n, const double *pos,
                      const double *cell, int periodic, const int *elem,
                      int nelements, double rc, double rmin, char *err);

/* Neighbour list from caller-provided candidate pairs (e.g. a LAMMPS full
 * list): for central atom i (0..natoms-1), candidates cidx[cstart[i]..cstart[i+1])
 * are atom indices into xall (n_all x 3) with elements eall.  Keeps those
 * within rc, sorts them by element.  Returns 0 or -1 (atoms closer than rmin). */
int hdnnp_nlist_from_pairs(hdnnp_nlist *nl, int natoms, const int *cstart,
                           const int *cidx, const double *xall, const int *eall,
                           int nelements, double rc, double rmin, char *err);

/* ---- evaluation ---------------------------------------------------------- */
typedef struct {
    int atom;          /* central atom */
    int sf;            /* sorted SF index */
    double value, gmin, gmax;
} hdnnp_ew;

/* Raw SF values G (natoms x maxsf, row stride ldg) and optionally their
 * derivatives in the compact layout: per atom i (offset dgoff[i], in
 * doubles) first dG_i/dr_i for all nsf SFs (nsf x 3), then for each
 * neighbour q in list order dG_i,s/dr_q for the SFs that depend on a
 * neighbour of q's element e only (el.nbcount[e] x 3, SF indices el.nbsf).
 * dgdr has room for hdnnp_dgdr_size doubles.  dgdr = NULL: values only. */
int hdnnp_symmetry_functions(const hdnnp_model *m, const hdnnp_nlist *nl,
                             const int *elem, double *G, int ldg,
                             double *dgdr, int64_t *dgoff);
/* The SFs of a subset of atoms that a force component on one atom needs:
 * for k < nsub, i = atoms[k], raw G_i (row k of G, stride ldg) and the
 * derivative with respect to the position of atom `target`, all its images
 * summed (dG_i,s/dr_target,c at dgt[3 (k ldg + s) + c]): the central atom's
 * term if i == target, then the neighbour images of target in list order.
 * Only the pairs that involve target are differentiated (the values and
 * the sums are those of hdnnp_symmetry_functions, bit for bit); rows of
 * atoms without target in their neighbourhood are zero.  Returns 0 or -1. */
int hdnnp_symmetry_functions_target(const hdnnp_model *m, const hdnnp_nlist *nl,
                                    const int *elem, int nsub, const int *atoms,
                                    int target, double *G, int ldg, double *dgt);
/* size needed for dgdr (doubles) */
int64_t hdnnp_dgdr_size(const hdnnp_model *m, const hdnnp_nlist *nl, const int *elem);

/* Scale raw SF values in place (natoms x ldg); counts values outside
 * [gmin, gmax] and stores up to ewcap of them in ew.  Returns the count. */
int64_t hdnnp_scale(const hdnnp_model *m, int natoms, const int *elem,
                    double *G, int ldg, hdnnp_ew *ew, int64_t ewcap);

/* Network of element e on scaled input gs: returns the raw output (training
 * units) and, if dEdG != NULL, dOut/dGs (length nsf). work >= 4*maxsize. */
double hdnnp_network(const hdnnp_model *m, int e, const double *gs,
                     double *dEdG, double *work);

/* Training kernels: gradients of the network output and of the directional
 * input derivative D = v . dOut/dGs with respect to the connections.
 * grad_out/grad_d (may be NULL) are ADDED to with factors a_out/a_d.
 * work: hdnnp_network_work_size(m) doubles.  Returns D. */
int hdnnp_network_work_size(const hdnnp_model *m);
double hdnnp_network_gradients(const hdnnp_model *m, int e, const double *gs,
                               const double *v, double a_out, double *grad_out,
                               double a_d, double *grad_d, double *work);

/* Energies and forces (the fast path: two passes, no stored SF derivatives).
 * natoms central atoms of nl; elem covers all atoms (incl. ghosts).
 * eatom (natoms): physical atomic energies (incl. offsets);
 * forces (n_all x 3) are ADDED to; dEde (9, row major) is ADDED to (may be
 * NULL); ew/ewcap as in hdnnp_scale.  *nwarn receives the number of
 * extrapolation warnings.  Returns 0 or -1. */
int hdnnp_energy_forces(const hdnnp_model *m, const hdnnp_nlist *nl,
                        const int *elem, double *eatom, double *forces,
                        double *dEde, hdnnp_ew *ew, int64_t ewcap,
                        int64_t *nwarn);

/* Same, also returning raw G (natoms x ldg), scaled Gs and dOut/dGs
 * (training units, before escale) for tests against n2p2's dumps. */
int hdnnp_energy_forces_full(const hdnnp_model *m, const hdnnp_nlist *nl,
                             const int *elem, double *eatom, double *forces,
                             double *dEde, hdnnp_ew *ew, int64_t ewcap,
                             int64_t *nwarn, double *G, double *Gs,
                             double *dEdGs, double *out, int ldg);

#ifdef __cplusplus
}
#endif
#endif
