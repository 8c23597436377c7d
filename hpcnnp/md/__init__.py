"""Production MD with LAMMPS: the hpcnnp plugin pair style and run drivers."""
