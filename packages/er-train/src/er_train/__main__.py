"""`python -m er_train`: the er-train command. This is also the way to start it data-parallel,
`torchrun --nproc-per-node N -m er_train STREAM -c CONFIG` (see er_train.distributed)."""

from er_train.cli import main

main()
