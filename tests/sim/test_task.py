"""The simulated task: seeded starts, the success detector, and expert demonstrations written
as the recorder writes episodes."""

from __future__ import annotations

import numpy as np
import pytest

from gigabrain_runtime.robots.embodiment import get_embodiment
from gigabrain_runtime.sim.expert import ExpertOperator, pick_and_place
from gigabrain_runtime.sim.simulator import Simulator, import_mujoco, load_scene
from gigabrain_runtime.sim.task import SuccessDetector, TaskSpec, Verdict

PIPER = get_embodiment("piper")


@pytest.fixture(scope="module")
def sim():
    s = Simulator(PIPER, image_size=64)
    yield s
    s.close()


def _run_expert(sim, seconds: float = 7.5, dt: float = 0.02) -> None:
    expert = ExpertOperator(PIPER, pick_and_place(sim))
    expert.start(0.0, sim.joint_positions())
    for k in range(int(seconds / dt)):
        sim.set_target(expert.command(k * dt))
        sim.step(dt)


def test_a_seed_fixes_the_start_and_starts_differ(sim):
    task = sim.task
    a = sim.start_episode(7)
    cube_a, bowl_a = sim.body_position("cube"), sim.body_position("bowl")
    b = sim.start_episode(8)
    assert a.objects != b.objects and not np.allclose(a.arm, b.arm)
    again = sim.start_episode(7)
    assert again.objects == a.objects and np.array_equal(again.arm, a.arm)
    np.testing.assert_allclose(sim.body_position("cube"), cube_a, atol=1e-9)
    np.testing.assert_allclose(sim.body_position("bowl"), bowl_a, atol=1e-9)
    np.testing.assert_allclose(sim.joint_positions(), a.arm, atol=1e-6)
    for seed in range(50):
        s = sim.start_episode(seed)
        for name, (x, y) in s.objects.items():
            (x0, x1), (y0, y1) = task.regions[name]
            assert x0 <= x <= x1 and y0 <= y <= y1
        assert np.hypot(*np.subtract(s.objects["cube"], s.objects["bowl"])) >= task.min_separation
        home = np.array([PIPER.home.get(j, 0.0) for j in PIPER.joint_names])
        assert np.all(np.abs(s.arm - home) <= task.start_jitter + 1e-12)


def test_a_joint_pushed_past_its_stop_by_contact_reads_at_the_stop(sim):
    """MuJoCo's joint limits are soft: a finger pressed against the cube can sit millimetres
    past its stop, which no encoder reports (and the executor would refuse the state)."""
    mujoco = import_mujoco()
    sim.start_episode(3)
    grip = PIPER.joint_names.index("gripper")
    for finger in ("finger_left", "finger_right"):
        jid = mujoco.mj_name2id(sim.model, mujoco.mjtObj.mjOBJ_JOINT, finger)
        sim.data.qpos[sim.model.jnt_qposadr[jid]] = 0.0457  # 5.7 mm past 0.04, as measured
    q = sim.joint_positions()
    assert q[grip] == pytest.approx(PIPER.upper[grip])  # 0.08, not 0.0914
    PIPER.check_positions(q[None], field="joint_states", margin=0.0)
    sim.start_episode(3)
    assert sim.joint_positions()[grip] < PIPER.upper[grip]  # within the stops: as it is


@pytest.mark.parametrize("seed", [3, 41, 977])
def test_the_detector_says_success_only_when_the_cube_rests_in_the_bowl(sim, seed):
    sim.start_episode(seed)
    start = sim.verdict()
    assert not start.success and "from the bowl's centre" in start.reason
    _run_expert(sim, seconds=4.9)  # the cube grasped, lifted and carried above the bowl
    held = sim.verdict()
    assert not held.success, held
    sim.start_episode(seed)
    _run_expert(sim)
    done = sim.verdict()
    assert done.success, done.reason
    assert done.reason == "cube in bowl"


def test_a_diverged_state_is_never_judged_a_success():
    spec = TaskSpec.from_scene(load_scene(PIPER))
    detector = SuccessDetector(spec)
    at_rest_in_bowl = dict(
        pick=np.array([0.3, -0.15, 0.02]),
        pick_velocity=np.zeros(3),
        place=np.array([0.3, -0.15, 0.005]),
        gripper=1.0,
    )
    assert detector.check(**at_rest_in_bowl).success
    for field in ("pick", "pick_velocity", "place"):
        bad = dict(at_rest_in_bowl, **{field: np.full(3, np.nan)})
        assert detector.check(**bad) == Verdict(False, "simulator state not finite"), field
    assert not detector.check(**dict(at_rest_in_bowl, gripper=float("nan"))).success


def test_a_takeover_next_to_the_cube_goes_on_at_once_and_still_finishes_the_task(sim):
    """The scripted operator paced from home: taken over where a failing policy hovers (a
    few cm beside the approach point) its first move is short, so its correction does not
    creep at the hover for the time a move from home takes; from home it keeps the written
    pace; either way the task is done."""
    sim.start_episode(11)
    plan = pick_and_place(sim)
    from_home = ExpertOperator(PIPER, plan, pace_from=sim.home, min_move_s=0.4)
    from_home.start(0.0, sim.home)
    assert from_home.first_move_s == pytest.approx(plan[0].duration_s)
    # the arm parked 2 cm beside the approach point, gripper open, as a hovering policy leaves it
    task = sim.scene["expert"]
    beside = sim.body_position("cube") + np.array([0.02, 0.0, float(task["approach_height"])])
    from gigabrain_runtime.sim.expert import solve_ik

    hover = solve_ik(sim, task["body"], np.asarray(task["point"], float), beside, plan[0].joints)
    start = sim.start_episode(11)
    sim.reset(type(start)(seed=start.seed, objects=start.objects, arm=hover))
    sim.step(0.5)
    near = ExpertOperator(PIPER, pick_and_place(sim), pace_from=sim.home, min_move_s=0.4)
    near.start(0.0, sim.joint_positions())
    assert 0.4 <= near.first_move_s < 0.5 * plan[0].duration_s
    unpaced = ExpertOperator(PIPER, pick_and_place(sim))
    unpaced.start(0.0, sim.joint_positions())
    assert unpaced.first_move_s == pytest.approx(plan[0].duration_s)
    dt = 0.02
    for k in range(int(7.0 / dt)):
        sim.set_target(near.command(k * dt))
        sim.step(dt)
    assert sim.verdict().success, sim.verdict().reason
    with pytest.raises(ValueError, match="min_move_s"):
        ExpertOperator(PIPER, plan, min_move_s=0)


def test_a_task_section_with_a_missing_field_is_refused_naming_it():
    scene = load_scene(PIPER)
    del scene["task"]["time_limit_s"]
    with pytest.raises(ValueError, match="task.time_limit_s missing"):
        TaskSpec.from_scene(scene)
    scene = load_scene(PIPER)
    scene["task"]["success"]["radius"] = 0
    with pytest.raises(ValueError, match="task.success.radius: must be a number > 0"):
        TaskSpec.from_scene(scene)


def test_sim_collect_writes_recorder_episodes_labelled_by_the_detector(tmp_path):
    from gigabrain_runtime.cli import main
    from gigabrain_runtime.hilr.episodes import read_episode
    from gigabrain_runtime.hilr.recording import read_sidecar

    assert (
        main(
            [
                "sim",
                "collect",
                "--episodes",
                "1",
                "--seed",
                "5",
                "--out",
                str(tmp_path),
                "--image-size",
                "64",
            ]
        )
        == 0
    )
    (episode,) = [d for d in tmp_path.iterdir() if d.is_dir()]
    info = read_sidecar(episode)
    assert (info.outcome, info.seed, info.status) == ("success", 5, "complete")
    assert info.instruction == "pick up the red cube and put it in the bowl"
    data = read_episode(episode)
    assert set(data) == {
        "/piper/joint_states",
        "/piper/joint_command",
        "/piper/instruction",
        "/piper/episode/event",
        "/piper/cameras/cam_high/image_raw",
        "/piper/cameras/cam_wrist/image_raw",
    }
    assert [m.data for _, m in data["/piper/episode/event"]] == ["start", "success"]
    states = data["/piper/joint_states"]
    stamps = np.array([m.header.stamp.sec + m.header.stamp.nanosec * 1e-9 for _, m in states])
    assert np.median(np.diff(stamps)) == pytest.approx(0.01, abs=1e-6)  # 100 Hz, simulated clock
    assert 5.0 < info.duration_s < 15.0
    frames = data["/piper/cameras/cam_high/image_raw"]
    assert frames[0][1].header.frame_id == "cam_high_optical_frame"
    assert (frames[0][1].width, frames[0][1].height) == (64, 64)


def test_a_disturbed_demonstration_records_the_experts_commands_and_the_arm_off_its_path(
    tmp_path,
):
    """sim collect --disturbance (DART): the recorded commands are the undisturbed expert's,
    bit for bit, while the arm's joints wander off them (the gripper never does)."""
    from gigabrain_runtime.cli import main
    from gigabrain_runtime.hilr.episodes import read_episode

    runs = {}
    for rad in (0.0, 0.05):
        out = tmp_path / str(rad)
        argv = ["sim", "collect", "--episodes", "1", "--seed", "7", "--out", str(out)]
        assert main([*argv, "--image-size", "32", "--disturbance", str(rad)]) == 0
        (episode,) = [d for d in out.iterdir() if d.is_dir()]
        data = read_episode(episode)
        runs[rad] = {
            key: np.array([m.position for _, m in data[f"/piper/{key}"]])
            for key in ("joint_command", "joint_states")
        }
    clean, disturbed = runs[0.0], runs[0.05]
    n = min(len(clean["joint_command"]), len(disturbed["joint_command"]))
    np.testing.assert_array_equal(disturbed["joint_command"][:n], clean["joint_command"][:n])
    m = min(len(clean["joint_states"]), len(disturbed["joint_states"]), 400)  # before the grasp
    apart = np.abs(disturbed["joint_states"][:m] - clean["joint_states"][:m])
    assert apart[:, :6].max() > 0.03, apart.max(axis=0)  # the arm is pushed off its path
    assert apart[:200, 6].max() < 1e-3  # the gripper is not (before it closes on the cube)
    with pytest.raises(ValueError, match="disturbance: must be in"):
        from gigabrain_runtime.sim.collect import CollectConfig

        CollectConfig(disturbance_rad=-1.0)


def test_the_grasp_point_follows_the_arm_and_leaves_the_simulation_alone(sim):
    from gigabrain_runtime.sim.expert import grasp_point

    sim.start_episode(4)
    before = sim.joint_positions()
    cube = sim.body_position("cube")
    plan = pick_and_place(sim)
    at_cube = next(w for w in plan if w.name == "at_cube")
    # the expert's IK put the grasp point 5 mm above the cube's centre
    np.testing.assert_allclose(grasp_point(sim, at_cube.joints), cube + [0, 0, 0.005], atol=2e-3)
    far = grasp_point(sim, before)
    assert np.linalg.norm(far - cube) > 0.05  # the start pose is away from the cube
    np.testing.assert_array_equal(sim.joint_positions(), before)  # kinematics only
