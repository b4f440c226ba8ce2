"""`python -m workbench.training`: the training job (the module name runners record)."""

import os
import sys

from workbench.training.job import main

os.environ.setdefault("PYTHONUNBUFFERED", "1")
sys.exit(main())
