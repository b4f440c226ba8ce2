"""Save SVG screenshots of each TUI screen for the README.

python docs/screenshots.py PROJECT_DIR    (e.g. a project made by `workbench demo DIR`; for
the Deployments screen, with a server running, a canary deployed and some traffic sent)
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from workbench_tui.app import WorkbenchApp

from workbench.project import Project

OUT = Path(__file__).resolve().parent
SIZE = (100, 30)


async def main(root: str) -> None:
    app = WorkbenchApp(Project.load(root), sync_on_start=True, poll_interval=None)
    async with app.run_test(size=SIZE) as pilot:
        for key, name in (
            ("1", "overview"),
            ("2", "experiments"),
            ("3", "models"),
            ("5", "deployments"),
        ):
            await pilot.press(key)
            await app.workers.wait_for_complete()
            await pilot.pause(0.3)
            app.save_screenshot(f"{name}.svg", str(OUT))
            print(OUT / f"{name}.svg")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
