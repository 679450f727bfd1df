"""The search space builder: DARTS operations, plain-data genotypes, genotype -> network, standard and task-aware
spaces."""
