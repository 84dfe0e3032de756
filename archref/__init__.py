"""archref: the course's own fast references. INSTRUCTOR-ONLY: never part of the student edition.

Some graded exercises have a working version that the course itself needs outside the
notebooks: the benchmark runs the fused selective scan at full size and a Mamba stack built on
it. Those working versions are answers, so they live here, apart from `archlab` (which every
student imports and receives):

    ssm     the selective scan three ways (sequential, parallel, fused numba kernel) = 02's answers
    mamba   a Mamba block on those scans with mamba-ssm's constructor and names = 02's MambaBlock

`python -m autograder bundle` leaves this package out of the student edition, and the grading
jail does not mount it, so a submission cannot import it. Notebooks never import it: where a
notebook needs a working Mamba block it uses `archlab.mamba` (transformers' MambaMixer, or
mamba-ssm's kernels on CUDA). Hidden tests fail an answer that merely calls into this package.
"""
