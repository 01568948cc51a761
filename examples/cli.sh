#!/usr/bin/env bash
# The command line, end to end: generate, search, restart, inspect, plot.
set -euo pipefail
ase-fuse generate --list
ase-fuse generate Ca3Ti2O7 --generator fuse -n 20 --max-atoms 50 --seed 1 -o fuse_pool.extxyz
ase-fuse run Ca3Ti2O7 --max-atoms 24 --steps 20 --initial-population 4 --seed 1 \
    --calculator proxy -o cli_run
ase-fuse run Ca3Ti2O7 --max-atoms 24 --steps 40 --seed 1 --calculator proxy -o cli_run --restart
# the paper's three runs per experiment, in lock-step (add --batch-size 8 with a CHGNet stack)
ase-fuse run Ca3Ti2O7 --max-atoms 24 --steps 10 --initial-population 4 --walkers 3 --seed 1 \
    --calculator proxy -o cli_walkers
ase-fuse report cli_run/fuse.db
ase-fuse plot cli_run/fuse.db -o cli_run/energy.png
