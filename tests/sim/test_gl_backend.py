"""MuJoCo picks its OpenGL backend once, when a process first imports it: a process that
imported it for forward kinematics before anything set MUJOCO_GL got GLFW, whose renderer fails
without a display (and aborts the process on the next try). CI hit this when the image
trajectory's tests and a rendering test shared a worker."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from gigabrain_runtime.structure import imports_of, package_modules

ROOT = Path(__file__).resolve().parents[2]

KINEMATICS_THEN_RENDER = """
from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.sim.simulator import Simulator
from gigabrain_runtime.sim.trajectory import ImageTrajectory

piper = get_embodiment("piper")
ImageTrajectory(piper, "cam_high")  # kinematics only: the first import of mujoco
sim = Simulator(piper, image_size=64)
try:
    sim.start_episode(0)
    image = sim.render("cam_high")
    print("rendered", image.shape, int(image.std() > 0))
finally:
    sim.close()
"""


def test_a_process_that_imports_mujoco_for_kinematics_first_still_renders_headless():
    env = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    out = subprocess.run(
        [sys.executable, "-c", KINEMATICS_THEN_RENDER],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert "rendered (64, 64, 3) 1" in out.stdout  # a picture, not a blank buffer


def test_every_import_of_mujoco_in_the_package_goes_through_import_mujoco():
    found = [
        f"{imp.source}:{imp.line}"
        for module, path in package_modules().items()
        for imp in imports_of(module, path)
        if imp.target.split(".")[0] == "mujoco"
    ]
    assert len(found) == 1 and found[0].startswith("gigabrain_runtime.sim.simulator:"), (
        f"import mujoco outside sim.simulator.import_mujoco: {found}"
    )
