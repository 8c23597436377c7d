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

typedef struct {
    int ec, type, e1, e2, line;
    double eta, rs, rc, lam, zeta;
} sfdef;

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

static int sf_compare(const void *pa, const void *pb)
{
    const sfdef *a = (const sfdef *)pa, *b = (const sfdef *)pb;
#define CMP(x, y) do { if ((x) < (y)) return -1; if ((x) > (y)) return 1; } while (0)
    CMP(a->type, b->type);
    CMP(a->rc, b->rc);
    CMP(a->eta, b->eta);
    CMP(a->rs, b->rs);
    if (a->type != 2) { CMP(a->zeta, b->zeta); CMP(a->lam, b->lam); }
    CMP(a->e1, b->e1);
    if (a->type != 2) CMP(a->e2, b->e2);
#undef CMP
    return 0;
}

static int act_index(char c)
{
    const char *letters = "ltsprgcSeh";
    const char *p = strchr(letters, c);
    return (p && c) ? (int)(p - letters) : -1;
}

#define FAIL(...) do { snprintf(err, HDNNP_ERRLEN, __VA_ARGS__); goto fail; } while (0)

hdnnp_model *hdnnp_model_load_n2p2(const char *dir, char *err)
{
    char path[4096], line[8192], *tok[MAXTOK];
    FILE *fp = NULL;
    hdnnp_model *m = NULL;
    sfdef *sf = (sfdef *)calloc(MAXSF, sizeof(sfdef));
    elmap em;
    double atom_energy[HDNNP_MAX_ELEMENTS] = {0};
    int nsf = 0, cutoff_type = -1, scale = 0, center = 0, sigma = 0, normalize = 0;
    double alpha = 0.0, smin = 0.0, smax = 1.0, mean_energy = 0.0, conv_energy = 1.0;
    int have_mean = 0, have_conv_e = 0, have_conv_l = 0, nhidden = -1, nnodes = 0, nacts = 0;
    int nodes[64], acts[65];
    int lineno = 0;
    memset(&em, 0, sizeof(em));
    err[0] = 0;
    if (!sf) FAIL("out of memory");

    snprintf(path, sizeof(path), "%s/input.nn", dir);
    fp = fopen(path, "r");
    if (!fp) FAIL("%s: cannot open the potential settings", path);
    /* first pass: elements (needed to sort them before SF lines are parsed) */
    while (fgets(line, sizeof(line), fp)) {
        ++lineno;
        int n = tokenize(line, tok);
        if (n == 0 || strcmp(tok[0], "elements") != 0) continue;
        if (n - 1 > HDNNP_MAX_ELEMENTS) FAIL("%s:%d: more than %d elements", path, lineno, HDNNP_MAX_ELEMENTS);
        em.ne = 0;
        for (int t = 1; t < n; ++t) {
            int z = hdnnp_atomic_number(tok[t]);
            if (!z) FAIL("%s:%d: unknown element '%s'", path, lineno, tok[t]);
            snprintf(em.el[em.ne], 4, "%s", tok[t]);
            em.z[em.ne++] = z;
        }
    }
    if (em.ne == 0) FAIL("%s: no 'elements' line", path);
    /* sort by atomic number (n2p2's element order) */
    for (int a = 0; a < em.ne; ++a)
        for (int b = a + 1; b < em.ne; ++b)
            if (em.z[b] < em.z[a]) {
                char t[4]; int tz = em.z[a];
                memcpy(t, em.el[a], 4); memcpy(em.el[a], em.el[b], 4); memcpy(em.el[b], t, 4);
                em.z[a] = em.z[b]; em.z[b] = tz;
            }
    rewind(fp);
    lineno = 0;
    while (fgets(line, sizeof(line), fp)) {
        ++lineno;
        int n = tokenize(line, tok);
        if (n == 0) continue;
        const char *k = tok[0];
        if (!strcmp(k, "symfunction_short") || !strcmp(k, "symfunction")) {
            if (nsf >= MAXSF) FAIL("%s:%d: more than %d symmetry functions", path, lineno, MAXSF);
            sfdef *d = &sf[nsf];
            memset(d, 0, sizeof(*d));
            d->line = lineno;
            if (n < 4) FAIL("%s:%d: incomplete symmetry function", path, lineno);
            d->ec = el_index(&em, tok[1]);
            d->type = atoi(tok[2]);
            if (d->ec < 0) FAIL("%s:%d: element '%s' not in 'elements'", path, lineno, tok[1]);
            if (d->type == 2) {
                if (n != 7) FAIL("%s:%d: type 2 needs 'Ec 2 E1 eta rs rc'", path, lineno);
                d->e1 = el_index(&em, tok[3]);
                if (d->e1 < 0) FAIL("%s:%d: element '%s' not in 'elements'", path, lineno, tok[3]);
                if (!parse_double(tok[4], &d->eta) || !parse_double(tok[5], &d->rs) ||
                    !parse_double(tok[6], &d->rc))
                    FAIL("%s:%d: bad number in symmetry function", path, lineno);
            } else if (d->type == 3 || d->type == 9) {
                if (n != 9 && n != 10) FAIL("%s:%d: type %d needs 'Ec T E1 E2 eta lambda zeta rc [rs]'", path, lineno, d->type);
                d->e1 = el_index(&em, tok[3]);
                d->e2 = el_index(&em, tok[4]);
                if (d->e1 < 0 || d->e2 < 0) FAIL("%s:%d: neighbour element not in 'elements'", path, lineno);
                if (!parse_double(tok[5], &d->eta) || !parse_double(tok[6], &d->lam) ||
                    !parse_double(tok[7], &d->zeta) || !parse_double(tok[8], &d->rc) ||
                    (n == 10 && !parse_double(tok[9], &d->rs)))
                    FAIL("%s:%d: bad number in symmetry function", path, lineno);
                if (d->e1 > d->e2) { int t = d->e1; d->e1 = d->e2; d->e2 = t; }
            } else {
                FAIL("%s:%d: symmetry function type %d is not supported (2, 3, 9)", path, lineno, d->type);
            }
            nsf++;
        } else if (!strcmp(k, "cutoff_type")) {
            if (n < 2) FAIL("%s:%d: cutoff_type needs a value", path, lineno);
            cutoff_type = atoi(tok[1]);
            if (n > 2 && !parse_double(tok[2], &alpha)) FAIL("%s:%d: bad alpha", path, lineno);
            if (cutoff_type < 0 || cutoff_type > 8 || alpha < 0.0 || alpha >= 1.0)
                FAIL("%s:%d: cutoff_type must be 0..8 and 0 <= alpha < 1", path, lineno);
        } else if (!strcmp(k, "atom_energy")) {
            int e = n > 2 ? el_index(&em, tok[1]) : -1;
            if (e < 0 || !parse_double(tok[2], &atom_energy[e])) FAIL("%s:%d: bad atom_energy line", path, lineno);
        } else if (!strcmp(k, "scale_symmetry_functions")) scale = 1;
        else if (!strcmp(k, "center_symmetry_functions")) center = 1;
        else if (!strcmp(k, "scale_symmetry_functions_sigma")) sigma = 1;
        else if (!strcmp(k, "normalize_nodes")) normalize = 1;
        else if (!strcmp(k, "scale_min_short")) { if (n < 2 || !parse_double(tok[1], &smin)) FAIL("%s:%d: bad scale_min_short", path, lineno); }
        else if (!strcmp(k, "scale_max_short")) { if (n < 2 || !parse_double(tok[1], &smax)) FAIL("%s:%d: bad scale_max_short", path, lineno); }
        else if (!strcmp(k, "mean_energy")) { if (n < 2 || !parse_double(tok[1], &mean_energy)) FAIL("%s:%d: bad mean_energy", path, lineno); have_mean = 1; }
        else if (!strcmp(k, "conv_energy")) { if (n < 2 || !parse_double(tok[1], &conv_energy)) FAIL("%s:%d: bad conv_energy", path, lineno); have_conv_e = 1; }
        else if (!strcmp(k, "conv_length")) { have_conv_l = 1; }
        else if (!strcmp(k, "global_hidden_layers_short")) { if (n < 2) FAIL("%s:%d: value missing", path, lineno); nhidden = atoi(tok[1]); }
        else if (!strcmp(k, "global_nodes_short")) {
            nnodes = n - 1;
            if (nnodes > 62) FAIL("%s:%d: too many layers", path, lineno);
            for (int t = 1; t < n; ++t) nodes[t - 1] = atoi(tok[t]);
        } else if (!strcmp(k, "global_activation_short")) {
            nacts = n - 1;
            if (nacts > 63) FAIL("%s:%d: too many layers", path, lineno);
            for (int t = 1; t < n; ++t) {
                acts[t] = (strlen(tok[t]) == 1) ? act_index(tok[t][0]) : -1;
                if (acts[t] < 0) FAIL("%s:%d: unknown activation '%s'", path, lineno, tok[t]);
            }
        } else if (!strncmp(k, "element_", 8) && strstr(k, "_short")) {
            FAIL("%s:%d: per-element network keywords are not supported by the plugin loader; "
                 "use the global_* keywords", path, lineno);
        }
    }
    fclose(fp);
    fp = NULL;
    if (cutoff_type < 0) FAIL("%s: no cutoff_type", path);
    if (nhidden < 0 || nnodes != nhidden || nacts != nhidden + 1)
        FAIL("%s: global_hidden_layers_short / global_nodes_short / global_activation_short are inconsistent", path);
    if ((have_mean + have_conv_e + have_conv_l) % 3 != 0)
        FAIL("%s: mean_energy, conv_energy and conv_length must be given together", path);

    m = hdnnp_model_new(em.ne, cutoff_type, alpha, normalize);
    if (!m) FAIL("cannot create the model");
    for (int e = 0; e < em.ne; ++e) memcpy(m->symbol[e], em.el[e], 4);
    int stype = HDNNP_SCALE_NONE;
    if (scale && center) stype = HDNNP_SCALE_SCALECENTER;
    else if (scale) stype = HDNNP_SCALE_SCALE;
    else if (center) stype = HDNNP_SCALE_CENTER;
    else if (sigma) stype = HDNNP_SCALE_SCALESIGMA;

    /* scaling.data rows, element by element in sorted SF order */
    /* scaling.data gives the scaling and, like in n2p2, the SF ranges behind the
     * extrapolation warnings: read it whenever it exists */
    FILE *fs = NULL;
    snprintf(path, sizeof(path), "%s/scaling.data", dir);
    fs = fopen(path, "r");
    if (!fs && stype != HDNNP_SCALE_NONE) FAIL("%s: cannot open (needed for SF scaling)", path);
    lineno = 0;
    for (int e = 0; e < em.ne; ++e) {
        int cnt = 0, t[MAXSF], e1[MAXSF], e2[MAXSF];
        static sfdef tmp[MAXSF];
        double eta[MAXSF], rs[MAXSF], rc[MAXSF], lam[MAXSF], zeta[MAXSF];
        for (int s = 0; s < nsf; ++s)
            if (sf[s].ec == e) tmp[cnt++] = sf[s];
        if (cnt == 0) FAIL("%s/input.nn: element %s has no symmetry functions", dir, em.el[e]);
        qsort(tmp, cnt, sizeof(sfdef), sf_compare);
        for (int s = 0; s < cnt; ++s) {
            t[s] = tmp[s].type; e1[s] = tmp[s].e1; e2[s] = tmp[s].e2; eta[s] = tmp[s].eta;
            rs[s] = tmp[s].rs; rc[s] = tmp[s].rc; lam[s] = tmp[s].lam; zeta[s] = tmp[s].zeta;
        }
        if (hdnnp_model_set_sf(m, e, cnt, t, e1, e2, eta, rs, rc, lam, zeta) != 0)
            FAIL("%s/input.nn: element %s: %s", dir, em.el[e], m->err);
        if (fs) {
            double *stats = (double *)calloc((size_t)cnt * 4, sizeof(double));
            int got = 0;
            while (got < cnt && fgets(line, sizeof(line), fs)) {
                ++lineno;
                if (line[0] == '#') continue;
                char *tk[MAXTOK];
                int n = tokenize(line, tk);
                if (n < 5) { free(stats); fclose(fs); fs = NULL; FAIL("%s:%d: expected 'e_index sf_index min max mean [sigma]'", path, lineno); }
                for (int c = 0; c < 4; ++c)
                    if (c + 2 < n && !parse_double(tk[c + 2], &stats[4 * got + c])) {
                        free(stats); fclose(fs); fs = NULL;
                        FAIL("%s:%d: bad number", path, lineno);
                    }
                got++;
            }
            if (got < cnt) { free(stats); fclose(fs); fs = NULL; FAIL("%s: too few rows for element %s (need %d SFs)", path, em.el[e], cnt); }
            if (hdnnp_model_set_scaling(m, e, stype, smin, smax, stats) != 0) { free(stats); fclose(fs); fs = NULL; FAIL("%s", m->err); }
            free(stats);
        } else {
            hdnnp_model_set_scaling(m, e, stype, smin, smax, NULL);
        }
        /* network and weights */
        int sizes[66];
        sizes[0] = cnt;
        for (int l = 0; l < nhidden; ++l) sizes[l + 1] = nodes[l];
        sizes[nhidden + 1] = 1;
        acts[0] = 0;
        if (hdnnp_model_set_network(m, e, nhidden + 2, sizes, acts, NULL, 1.0 / conv_energy,
                                    mean_energy + atom_energy[e]) != 0)
            FAIL("%s", m->err);
        const int nw = m->el[e].nweights;
        double *w = (double *)calloc((size_t)nw, sizeof(double));
        char wpath[4096];
        snprintf(wpath, sizeof(wpath), "%s/weights.%03d.data", dir, em.z[e]);
        FILE *fw = fopen(wpath, "r");
        if (!fw) { free(w); FAIL("%s: weights file of element %s not found", wpath, em.el[e]); }
        int got = 0, wl = 0;
        while (fgets(line, sizeof(line), fw)) {
            ++wl;
            char *tk[MAXTOK];
            if (line[0] == '#') continue;
            int n = tokenize(line, tk);
            if (n == 0) continue;
            if (got >= nw) { fclose(fw); free(w); FAIL("%s:%d: more weights than the network has (%d)", wpath, wl, nw); }
            if (!parse_double(tk[0], &w[got])) { fclose(fw); free(w); FAIL("%s:%d: bad number", wpath, wl); }
            got++;
        }
        fclose(fw);
        if (got != nw) { free(w); FAIL("%s: %d weights, the network needs %d", wpath, got, nw); }
        hdnnp_model_set_weights(m, e, w);
        free(w);
    }
    if (fs) fclose(fs);
    free(sf);
    return m;
fail:
    if (fp) fclose(fp);
    free(sf);
    hdnnp_model_free(m);
    return NULL;
}

