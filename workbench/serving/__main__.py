"""`python -m workbench.serving`: the inference server (the module name runners record)."""

import sys

from workbench.serving.server import main

sys.exit(main())
