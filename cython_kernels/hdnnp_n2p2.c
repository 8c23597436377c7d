/*
 * hdnnp_n2p2.c — read an n2p2 potential folder (input.nn, scaling.data,
 * weights.ZZZ.data) into an hdnnp_model, for front doors without Python
 * (the LAMMPS plugin).  Only the keywords that define the potential are
 * read (n2p2-formats.md §2.1, §5, §7, §8); the Python reader
 * (hpcnnp.io.n2p2) is the full, validating one and both are checked against
 * each other by the tests.
 */
#include "hdnnp_core.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const SYMBOLS[] = {
    "H", "He", "Li", "Be", "B", "C", "N", "O", "F", "Ne", "Na", "Mg", "Al", "Si", "P", "S",
    "Cl", "Ar", "K", "Ca", "Sc", "Ti", "V", "Cr", "Mn", "Fe", "Co", "Ni", "Cu", "Zn", "Ga",
    "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y", "Zr", "Nb", "Mo", "Tc", "Ru", "Rh", "Pd",
    "Ag", "Cd", "In", "Sn", "Sb", "Te", "I", "Xe", "Cs", "Ba", "La", "Ce", "Pr", "Nd", "Pm",
    "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W", "Re", "Os",
    "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa",
    "U", "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No"};

int hdnnp_atomic_number(const char *symbol)
{
    for (int z = 0; z < 102; ++z)
        if (strcmp(SYMBOLS[z], symbol) == 0) return z + 1;
    return 0;
}

#define MAXTOK 64
#define MAXSF 4096

/* ---- SF line layouts ------------------------------------------------------ */

/* Fields after "symfunction_short Ec type" ([x]: optional at the end) and
 * n2p2's sort key after the type number (the cutoff type and alpha, equal for
 * all SFs of a potential, come first for the Gaussian types): the C side of
 * the table hpcnnp.descriptors.sftypes, compared with it by a test. */
static const struct { int type; const char *fields, *order; } SF_LAYOUT[] = {
    {2, "e1 eta rs rc", "rc eta rs e1"},
    {3, "e1 e2 eta lambda zeta rc [rs]", "rc eta rs zeta lambda e1 e2"},
    {9, "e1 e2 eta lambda zeta rc [rs]", "rc eta rs zeta lambda e1 e2"},
    {12, "eta rs rc", "rc eta rs"},
    {13, "eta rs lambda zeta rc", "rc eta rs zeta lambda"},
    {20, "e1 rl rc subtype", "subtype e1 rc rl"},
    {21, "e1 e2 rl rc angle_left angle_right subtype", "subtype e1 e2 rc rl angle_left angle_right"},
    {22, "e1 e2 rl rc angle_left angle_right subtype", "subtype e1 e2 rc rl angle_left angle_right"},
    {23, "rl rc subtype", "subtype rc rl"},
    {24, "rl rc angle_left angle_right subtype", "subtype rc rl angle_left angle_right"},
    {25, "rl rc angle_left angle_right subtype", "subtype rc rl angle_left angle_right"},
};
#define N_LAYOUT ((int)(sizeof(SF_LAYOUT) / sizeof(SF_LAYOUT[0])))

const char *hdnnp_sf_layout(int type, int which)
{
    for (int i = 0; i < N_LAYOUT; ++i)
        if (SF_LAYOUT[i].type == type) return which ? SF_LAYOUT[i].order : SF_LAYOUT[i].fields;
    return NULL;
}

enum { F_E1, F_E2, F_ETA, F_RS, F_RC, F_LAM, F_ZETA, F_RL, F_AL, F_AR, F_SUB, F_N };
static const char *const FIELD_NAMES[F_N] = {"e1", "e2", "eta", "rs", "rc", "lambda", "zeta",
                                             "rl", "angle_left", "angle_right", "subtype"};

typedef struct {
    int ec, line;
    hdnnp_sf_param p;
    double num[F_N];      /* numeric fields by id (e1/e2 as element indices) */
    char subtype[8];
} sfdef;

/* field ids of a layout string; *nreq = fields before the first optional one */
static int layout_ids(const char *s, int *ids, int *nreq)
{
    int n = 0;
    *nreq = -1;
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", s);
    for (char *t = strtok(buf, " "); t; t = strtok(NULL, " ")) {
        int opt = t[0] == '[';
        if (opt) { t++; t[strlen(t) - 1] = 0; if (*nreq < 0) *nreq = n; }
        for (int f = 0; f < F_N; ++f)
            if (!strcmp(t, FIELD_NAMES[f])) ids[n] = f;
        n++;
    }
    if (*nreq < 0) *nreq = n;
    return n;
}

static int sf_compare(const void *pa, const void *pb)
{
    const sfdef *a = (const sfdef *)pa, *b = (const sfdef *)pb;
    if (a->p.type != b->p.type) return a->p.type < b->p.type ? -1 : 1;
    int ids[16], nreq;
    const int n = layout_ids(hdnnp_sf_layout(a->p.type, 1), ids, &nreq);
    for (int k = 0; k < n; ++k) {
        if (ids[k] == F_SUB) {
            int c = strcmp(a->subtype, b->subtype);
            if (c) return c < 0 ? -1 : 1;
            continue;
        }
        const double x = a->num[ids[k]], y = b->num[ids[k]];
        if (x < y) return -1;
        if (x > y) return 1;
    }
    return 0;
}

/* ---- tokens and numbers -------------------------------------------------- */

typedef struct {
    int ne;
    char el[HDNNP_MAX_ELEMENTS][4];
    int z[HDNNP_MAX_ELEMENTS];
} elmap;

static int el_index(const elmap *em, const char *s)
{
    for (int e = 0; e < em->ne; ++e)
        if (strcmp(em->el[e], s) == 0) return e;
    return -1;
}

/* split a line into tokens (comments after # or ! removed) */
static int tokenize(char *line, char **tok)
{
    int n = 0;
    for (char *p = line; *p; ++p)
        if (*p == '#' || *p == '!' || *p == '\n' || *p == '\r') { *p = 0; break; }
    for (char *p = strtok(line, " \t"); p && n < MAXTOK; p = strtok(NULL, " \t")) tok[n++] = p;
    return n;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    *v = strtod(s, &end);
    return end != s && *end == 0 && isfinite(*v);
}

static int act_index(char c)
{
    const char *letters = "ltsprgcSeh";
    const char *p = strchr(letters, c);
    return (p && c) ? (int)(p - letters) : -1;
}

/* compact-function subtype p1..p4, p1a..p4a, e */
static int parse_subtype(const char *s, int *core, int *asym)
{
    *asym = 0;
    if (!strcmp(s, "e")) { *core = HDNNP_CORE_EXP; return 0; }
    if (s[0] != 'p' || s[1] < '1' || s[1] > '4' || (s[2] && (s[2] != 'a' || s[3]))) return -1;
    *core = HDNNP_CORE_POLY1 + (s[1] - '1');
    *asym = s[2] == 'a';
    return 0;
}

#define FAIL(...) do { snprintf(err, HDNNP_ERRLEN, __VA_ARGS__); goto fail; } while (0)

/* one symfunction_short line (tokens after the keyword) */
static int parse_sf(const elmap *em, char **tok, int n, sfdef *d, const char *path, int line,
                    char *err)
{
    memset(d, 0, sizeof(*d));
    d->line = line;
    d->p.e1 = d->p.e2 = -1;
    if (n < 2) FAIL("%s:%d: incomplete symmetry function", path, line);
    d->ec = el_index(em, tok[0]);
    if (d->ec < 0) FAIL("%s:%d: element '%s' not in 'elements'", path, line, tok[0]);
    d->p.type = atoi(tok[1]);
    const char *layout = hdnnp_sf_layout(d->p.type, 0);
    if (!layout) FAIL("%s:%d: unknown symmetry function type %d", path, line, d->p.type);
    int ids[16], nreq;
    const int nf = layout_ids(layout, ids, &nreq);
    if (n - 2 < nreq || n - 2 > nf)
        FAIL("%s:%d: type %d needs 'Ec %d %s'", path, line, d->p.type, d->p.type, layout);
    for (int k = 0; k < n - 2; ++k) {
        const char *t = tok[k + 2];
        if (ids[k] == F_E1 || ids[k] == F_E2) {
            int e = el_index(em, t);
            if (e < 0) FAIL("%s:%d: neighbour element '%s' not in 'elements'", path, line, t);
            d->num[ids[k]] = e;
        } else if (ids[k] == F_SUB) {
            if (parse_subtype(t, &d->p.core, &d->p.asym) != 0)
                FAIL("%s:%d: unknown compact function subtype '%s' (p1..p4, p1a..p4a, e)", path, line, t);
            snprintf(d->subtype, sizeof(d->subtype), "%s", t);
        } else if (!parse_double(t, &d->num[ids[k]])) {
            FAIL("%s:%d: bad number '%s' in symmetry function", path, line, t);
        }
    }
    if (d->p.type == 3 || d->p.type == 9 || d->p.type == 21 || d->p.type == 22) {
        if (d->num[F_E1] > d->num[F_E2]) {   /* n2p2 orders the neighbour pair */
            double t = d->num[F_E1]; d->num[F_E1] = d->num[F_E2]; d->num[F_E2] = t;
        }
    }
    for (int k = 0; k < nf; ++k) {
        if (ids[k] == F_E1) d->p.e1 = (int)d->num[F_E1];
        if (ids[k] == F_E2) d->p.e2 = (int)d->num[F_E2];
    }
    d->p.eta = d->num[F_ETA]; d->p.rs = d->num[F_RS]; d->p.rc = d->num[F_RC];
    d->p.lam = d->num[F_LAM]; d->p.zeta = d->num[F_ZETA]; d->p.rl = d->num[F_RL];
    d->p.angle_l = d->num[F_AL]; d->p.angle_r = d->num[F_AR];
    return 0;
fail:
    return -1;
}

/* ---- input.nn --------------------------------------------------------------- */

typedef struct {
    elmap em;
    sfdef *sf;
    int nsf, cutoff_type, scale, center, sigma, normalize;
    double alpha, smin, smax, mean_energy, conv_energy;
    double atom_energy[HDNNP_MAX_ELEMENTS];
    int have_mean, have_conv_e, have_conv_l, nhidden, nnodes, nacts;
    int nodes[64], acts[65];
} settings;

/* first pass: the elements (sorted by atomic number, n2p2's order) */
static int read_elements(FILE *fp, elmap *em, const char *path, char *err)
{
    char line[8192], *tok[MAXTOK];
    int lineno = 0;
    memset(em, 0, sizeof(*em));
    while (fgets(line, sizeof(line), fp)) {
        ++lineno;
        int n = tokenize(line, tok);
        if (n == 0 || strcmp(tok[0], "elements") != 0) continue;
        if (n - 1 > HDNNP_MAX_ELEMENTS) FAIL("%s:%d: more than %d elements", path, lineno, HDNNP_MAX_ELEMENTS);
        em->ne = 0;
        for (int t = 1; t < n; ++t) {
            int z = hdnnp_atomic_number(tok[t]);
            if (!z) FAIL("%s:%d: unknown element '%s'", path, lineno, tok[t]);
            snprintf(em->el[em->ne], 4, "%s", tok[t]);
            em->z[em->ne++] = z;
        }
    }
    if (em->ne == 0) FAIL("%s: no 'elements' line", path);
    for (int a = 0; a < em->ne; ++a)
        for (int b = a + 1; b < em->ne; ++b)
            if (em->z[b] < em->z[a]) {
                char t[4]; int tz = em->z[a];
                memcpy(t, em->el[a], 4); memcpy(em->el[a], em->el[b], 4); memcpy(em->el[b], t, 4);
                em->z[a] = em->z[b]; em->z[b] = tz;
            }
    return 0;
fail:
    return -1;
}

/* nnp_type / nnp_generation: only 2G-HDNNPs are evaluated here */
static int check_nnp_type(char **tok, int n, const char *path, int line, char *err)
{
    if (n < 2) FAIL("%s:%d: %s needs a value", path, line, tok[0]);
    if (!strcmp(tok[1], "2G-HDNNP") || atoi(tok[1]) == 2) return 0;
    FAIL("%s:%d: %s %s: not a 2G-HDNNP; hpcnnp evaluates short-range networks only, it has "
         "no charge networks, charge equilibration or electrostatics (4G-HDNNP, Q-HDNNP)",
         path, line, tok[0], tok[1]);
fail:
    return -1;
}

/* one keyword line of the second pass */
static int read_keyword(settings *st, char **tok, int n, const char *path, int lineno, char *err)
{
    const char *k = tok[0];
    if (!strcmp(k, "symfunction_short") || !strcmp(k, "symfunction")) {
        if (st->nsf >= MAXSF) FAIL("%s:%d: more than %d symmetry functions", path, lineno, MAXSF);
        if (parse_sf(&st->em, tok + 1, n - 1, &st->sf[st->nsf], path, lineno, err) != 0) return -1;
        st->nsf++;
    } else if (!strcmp(k, "nnp_type") || !strcmp(k, "nnp_generation") ||
               !strcmp(k, "nnp_type_gen") || !strcmp(k, "nnp_gen")) {
        return check_nnp_type(tok, n, path, lineno, err);
    } else if (!strcmp(k, "cutoff_type")) {
        if (n < 2) FAIL("%s:%d: cutoff_type needs a value", path, lineno);
        st->cutoff_type = atoi(tok[1]);
        if (n > 2 && !parse_double(tok[2], &st->alpha)) FAIL("%s:%d: bad alpha", path, lineno);
        if (st->cutoff_type < 0 || st->cutoff_type > 8 || st->alpha < 0.0 || st->alpha >= 1.0)
            FAIL("%s:%d: cutoff_type must be 0..8 and 0 <= alpha < 1", path, lineno);
    } else if (!strcmp(k, "atom_energy")) {
        int e = n > 2 ? el_index(&st->em, tok[1]) : -1;
        if (e < 0 || !parse_double(tok[2], &st->atom_energy[e])) FAIL("%s:%d: bad atom_energy line", path, lineno);
    } else if (!strcmp(k, "scale_symmetry_functions")) st->scale = 1;
    else if (!strcmp(k, "center_symmetry_functions")) st->center = 1;
    else if (!strcmp(k, "scale_symmetry_functions_sigma")) st->sigma = 1;
    else if (!strcmp(k, "normalize_nodes")) st->normalize = 1;
    else if (!strcmp(k, "scale_min_short")) { if (n < 2 || !parse_double(tok[1], &st->smin)) FAIL("%s:%d: bad scale_min_short", path, lineno); }
    else if (!strcmp(k, "scale_max_short")) { if (n < 2 || !parse_double(tok[1], &st->smax)) FAIL("%s:%d: bad scale_max_short", path, lineno); }
    else if (!strcmp(k, "mean_energy")) { if (n < 2 || !parse_double(tok[1], &st->mean_energy)) FAIL("%s:%d: bad mean_energy", path, lineno); st->have_mean = 1; }
    else if (!strcmp(k, "conv_energy")) { if (n < 2 || !parse_double(tok[1], &st->conv_energy)) FAIL("%s:%d: bad conv_energy", path, lineno); st->have_conv_e = 1; }
    else if (!strcmp(k, "conv_length")) { st->have_conv_l = 1; }
    else if (!strcmp(k, "global_hidden_layers_short")) { if (n < 2) FAIL("%s:%d: value missing", path, lineno); st->nhidden = atoi(tok[1]); }
    else if (!strcmp(k, "global_nodes_short")) {
        st->nnodes = n - 1;
        if (st->nnodes > 62) FAIL("%s:%d: too many layers", path, lineno);
        for (int t = 1; t < n; ++t) st->nodes[t - 1] = atoi(tok[t]);
    } else if (!strcmp(k, "global_activation_short")) {
        st->nacts = n - 1;
        if (st->nacts > 63) FAIL("%s:%d: too many layers", path, lineno);
        for (int t = 1; t < n; ++t) {
            st->acts[t] = (strlen(tok[t]) == 1) ? act_index(tok[t][0]) : -1;
            if (st->acts[t] < 0) FAIL("%s:%d: unknown activation '%s'", path, lineno, tok[t]);
        }
    } else if (!strncmp(k, "element_", 8) && strstr(k, "_short")) {
        FAIL("%s:%d: per-element network keywords are not supported by the plugin loader; "
             "use the global_* keywords", path, lineno);
    }
    return 0;
fail:
    return -1;
}

static int read_settings(const char *dir, settings *st, char *err)
{
    char path[4096], line[8192], *tok[MAXTOK];
    int lineno = 0;
    snprintf(path, sizeof(path), "%s/input.nn", dir);
    FILE *fp = fopen(path, "r");
    if (!fp) FAIL("%s: cannot open the potential settings", path);
    if (read_elements(fp, &st->em, path, err) != 0) goto fail;
    rewind(fp);
    while (fgets(line, sizeof(line), fp)) {
        ++lineno;
        int n = tokenize(line, tok);
        if (n > 0 && read_keyword(st, tok, n, path, lineno, err) != 0) goto fail;
    }
    fclose(fp);
    fp = NULL;
    if (st->cutoff_type < 0) FAIL("%s: no cutoff_type", path);
    if (st->nhidden < 0 || st->nnodes != st->nhidden || st->nacts != st->nhidden + 1)
        FAIL("%s: global_hidden_layers_short / global_nodes_short / global_activation_short are inconsistent", path);
    if ((st->have_mean + st->have_conv_e + st->have_conv_l) % 3 != 0)
        FAIL("%s: mean_energy, conv_energy and conv_length must be given together", path);
    return 0;
fail:
    if (fp) fclose(fp);
    return -1;
}

/* ---- scaling.data and weights ------------------------------------------------ */

/* the next cnt rows of scaling.data (stats: cnt x 4) */
static int read_scaling_rows(FILE *fs, const char *path, int *lineno, int cnt, double *stats,
                             const char *element, char *err)
{
    char line[8192], *tk[MAXTOK];
    int got = 0;
    while (got < cnt && fgets(line, sizeof(line), fs)) {
        ++*lineno;
        if (line[0] == '#') continue;
        int n = tokenize(line, tk);
        if (n < 5) FAIL("%s:%d: expected 'e_index sf_index min max mean [sigma]'", path, *lineno);
        for (int c = 0; c < 4; ++c)
            if (c + 2 < n && !parse_double(tk[c + 2], &stats[4 * got + c]))
                FAIL("%s:%d: bad number", path, *lineno);
        got++;
    }
    if (got < cnt) FAIL("%s: too few rows for element %s (need %d SFs)", path, element, cnt);
    return 0;
fail:
    return -1;
}

static int read_weights(const char *dir, int z, const char *element, int nw, double *w, char *err)
{
    char wpath[4096], line[8192], *tk[MAXTOK];
    snprintf(wpath, sizeof(wpath), "%s/weights.%03d.data", dir, z);
    FILE *fw = fopen(wpath, "r");
    if (!fw) FAIL("%s: weights file of element %s not found", wpath, element);
    int got = 0, wl = 0;
    while (fgets(line, sizeof(line), fw)) {
        ++wl;
        if (line[0] == '#') continue;
        int n = tokenize(line, tk);
        if (n == 0) continue;
        if (got >= nw) FAIL("%s:%d: more weights than the network has (%d)", wpath, wl, nw);
        if (!parse_double(tk[0], &w[got])) FAIL("%s:%d: bad number", wpath, wl);
        got++;
    }
    fclose(fw);
    fw = NULL;
    if (got != nw) FAIL("%s: %d weights, the network needs %d", wpath, got, nw);
    return 0;
fail:
    if (fw) fclose(fw);
    return -1;
}

static int scaling_type(const settings *st)
{
    if (st->scale && st->center) return HDNNP_SCALE_SCALECENTER;
    if (st->scale) return HDNNP_SCALE_SCALE;
    if (st->center) return HDNNP_SCALE_CENTER;
    if (st->sigma) return HDNNP_SCALE_SCALESIGMA;
    return HDNNP_SCALE_NONE;
}

/* SFs (sorted), scaling and network of element e */
static int build_element(hdnnp_model *m, const char *dir, settings *st, int e, FILE *fs,
                         const char *spath, int *slineno, char *err)
{
    static sfdef tmp[MAXSF];
    static hdnnp_sf_param par[MAXSF];
    double *buf = NULL;
    int cnt = 0;
    for (int s = 0; s < st->nsf; ++s)
        if (st->sf[s].ec == e) tmp[cnt++] = st->sf[s];
    if (cnt == 0) FAIL("%s/input.nn: element %s has no symmetry functions", dir, st->em.el[e]);
    qsort(tmp, cnt, sizeof(sfdef), sf_compare);
    for (int s = 0; s < cnt; ++s) par[s] = tmp[s].p;
    if (hdnnp_model_set_sf(m, e, cnt, par) != 0)
        FAIL("%s/input.nn: element %s: %s", dir, st->em.el[e], m->err);
    /* scaling.data gives the scaling and, like in n2p2, the SF ranges behind the
     * extrapolation warnings: read it whenever it exists */
    if (fs) {
        buf = (double *)calloc((size_t)cnt * 4, sizeof(double));
        if (!buf) FAIL("out of memory");
        if (read_scaling_rows(fs, spath, slineno, cnt, buf, st->em.el[e], err) != 0) goto fail;
    }
    if (hdnnp_model_set_scaling(m, e, scaling_type(st), st->smin, st->smax, buf) != 0)
        FAIL("%s", m->err);
    free(buf);
    buf = NULL;
    int sizes[66];
    sizes[0] = cnt;
    for (int l = 0; l < st->nhidden; ++l) sizes[l + 1] = st->nodes[l];
    sizes[st->nhidden + 1] = 1;
    st->acts[0] = 0;
    if (hdnnp_model_set_network(m, e, st->nhidden + 2, sizes, st->acts, NULL, 1.0 / st->conv_energy,
                                st->mean_energy + st->atom_energy[e]) != 0)
        FAIL("%s", m->err);
    const int nw = m->el[e].nweights;
    buf = (double *)calloc((size_t)nw, sizeof(double));
    if (!buf) FAIL("out of memory");
    if (read_weights(dir, st->em.z[e], st->em.el[e], nw, buf, err) != 0) goto fail;
    hdnnp_model_set_weights(m, e, buf);
    free(buf);
    return 0;
fail:
    free(buf);
    return -1;
}

hdnnp_model *hdnnp_model_load_n2p2(const char *dir, char *err)
{
    char spath[4096];
    FILE *fs = NULL;
    hdnnp_model *m = NULL;
    settings *st = (settings *)calloc(1, sizeof(settings));
    err[0] = 0;
    if (!st) FAIL("out of memory");
    st->sf = (sfdef *)calloc(MAXSF, sizeof(sfdef));
    if (!st->sf) FAIL("out of memory");
    st->cutoff_type = -1;
    st->nhidden = -1;
    st->smax = 1.0;
    st->conv_energy = 1.0;
    if (read_settings(dir, st, err) != 0) goto fail;

    m = hdnnp_model_new(st->em.ne, st->cutoff_type, st->alpha, st->normalize);
    if (!m) FAIL("cannot create the model");
    for (int e = 0; e < st->em.ne; ++e) memcpy(m->symbol[e], st->em.el[e], 4);
    hdnnp_model_set_atomic_numbers(m, st->em.z);
    snprintf(spath, sizeof(spath), "%s/scaling.data", dir);
    fs = fopen(spath, "r");
    if (!fs && scaling_type(st) != HDNNP_SCALE_NONE) FAIL("%s: cannot open (needed for SF scaling)", spath);
    int slineno = 0;
    for (int e = 0; e < st->em.ne; ++e)
        if (build_element(m, dir, st, e, fs, spath, &slineno, err) != 0) goto fail;
    if (fs) fclose(fs);
    free(st->sf);
    free(st);
    return m;
fail:
    if (fs) fclose(fs);
    if (st) free(st->sf);
    free(st);
    hdnnp_model_free(m);
    return NULL;
}
