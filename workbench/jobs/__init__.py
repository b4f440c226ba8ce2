"""Jobs: running a job through a runner and recording it, the `@wb` event protocol, job
images and the Docker engine, GPU processes, and settling jobs that ended unobserved.

May import: registry (settling a dead pipeline's version), store and the kernel.
"""
