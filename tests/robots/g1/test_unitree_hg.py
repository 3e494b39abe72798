"""unitree_hg messages: the C layout the CRC is defined over, the CRC, and the DDS wire format.

(No ``from __future__ import annotations`` here: cyclonedds reads the IDL classes' annotations.)
"""

import struct
from dataclasses import dataclass

import numpy as np
import pytest

from gigabrain_runtime.robots.g1 import unitree_hg as hg

LOW_CMD_FORMAT = "<2B2x" + "B3x5fI" * 35 + "5I"
LOW_STATE_FORMAT = "<2I2B2xI" + "13fh2x" + "B3x4f2hf7I" * 35 + "40B5I"


def reference_crc(words) -> int:
    """Unitree's crc32_core, bit by bit, as its SDK examples write it."""
    crc, poly = 0xFFFFFFFF, 0x04C11DB7
    for word in words:
        for bit in range(31, -1, -1):
            crc = ((crc << 1) & 0xFFFFFFFF) ^ poly if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
            if (int(word) >> bit) & 1:
                crc ^= poly
    return crc


def random_low_cmd(rng) -> np.ndarray:
    rec = hg.new_low_cmd()
    rec["mode_pr"], rec["mode_machine"] = rng.integers(0, 256, 2)
    mc = rec["motor_cmd"]
    mc["mode"] = rng.integers(0, 256, 35)
    for f in ("q", "dq", "tau", "kp", "kd"):
        mc[f] = rng.normal(size=35)
    mc["reserve"] = rng.integers(0, 2**32, 35, dtype=np.uint64)
    rec["reserve"] = rng.integers(0, 2**32, 4, dtype=np.uint64)
    rec["crc"] = rng.integers(0, 2**32, dtype=np.uint64)
    return rec


def random_low_state(rng) -> np.ndarray:
    rec = hg.new_low_state()
    rec["version"] = rng.integers(0, 2**32, 2, dtype=np.uint64)
    rec["mode_pr"], rec["mode_machine"] = rng.integers(0, 256, 2)
    rec["tick"] = rng.integers(0, 2**32, dtype=np.uint64)
    imu = rec["imu_state"]
    for f in ("quaternion", "gyroscope", "accelerometer", "rpy"):
        imu[f] = rng.normal(size=imu[f].shape)
    imu["temperature"] = rng.integers(-100, 100)
    ms = rec["motor_state"]
    ms["mode"] = rng.integers(0, 256, 35)
    for f in ("q", "dq", "ddq", "tau_est", "vol"):
        ms[f] = rng.normal(size=35)
    ms["temperature"] = rng.integers(-100, 100, (35, 2))
    for f, shape in (("sensor", (35, 2)), ("motorstate", 35), ("reserve", (35, 4))):
        ms[f] = rng.integers(0, 2**32, shape, dtype=np.uint64)
    rec["wireless_remote"] = rng.integers(0, 256, 40)
    rec["reserve"] = rng.integers(0, 2**32, 4, dtype=np.uint64)
    rec["crc"] = rng.integers(0, 2**32, dtype=np.uint64)
    return rec


def test_c_layout_sizes_match_unitrees_structs():
    assert hg.LOW_CMD_SIZE == struct.calcsize(LOW_CMD_FORMAT) == 1004
    assert hg.LOW_STATE_SIZE == struct.calcsize(LOW_STATE_FORMAT) == 2092


def test_packed_low_cmd_is_the_c_struct_field_by_field():
    rec = random_low_cmd(np.random.default_rng(0))
    mc = rec["motor_cmd"]
    values = [int(rec["mode_pr"]), int(rec["mode_machine"])]
    for i in range(35):
        values += [int(mc["mode"][i])] + [float(mc[f][i]) for f in ("q", "dq", "tau", "kp", "kd")]
        values.append(int(mc["reserve"][i]))
    values += [int(v) for v in rec["reserve"]] + [int(rec["crc"])]
    assert hg.pack(rec) == struct.pack(LOW_CMD_FORMAT, *values)


def test_packed_low_state_is_the_c_struct_field_by_field():
    rec = random_low_state(np.random.default_rng(1))
    imu, ms = rec["imu_state"], rec["motor_state"]
    values = [*map(int, rec["version"]), int(rec["mode_pr"]), int(rec["mode_machine"])]
    values.append(int(rec["tick"]))
    for f in ("quaternion", "gyroscope", "accelerometer", "rpy"):
        values += [float(v) for v in imu[f]]
    values.append(int(imu["temperature"]))
    for i in range(35):
        values.append(int(ms["mode"][i]))
        values += [float(ms[f][i]) for f in ("q", "dq", "ddq", "tau_est")]
        values += [int(v) for v in ms["temperature"][i]] + [float(ms["vol"][i])]
        values += [int(v) for v in ms["sensor"][i]] + [int(ms["motorstate"][i])]
        values += [int(v) for v in ms["reserve"][i]]
    values += [int(v) for v in rec["wireless_remote"]]
    values += [int(v) for v in rec["reserve"]] + [int(rec["crc"])]
    assert hg.pack(rec) == struct.pack(LOW_STATE_FORMAT, *values)


def test_pack_unpack_round_trip():
    rng = np.random.default_rng(2)
    cmd, state = random_low_cmd(rng), random_low_state(rng)
    assert hg.unpack_low_cmd(hg.pack(cmd)).tobytes() == cmd.tobytes()
    assert hg.unpack_low_state(hg.pack(state)).tobytes() == state.tobytes()
    with pytest.raises(ValueError, match="expected 1004 bytes"):
        hg.unpack_low_cmd(b"\0" * 1000)


def test_crc_test_vectors():
    rec = hg.new_low_cmd()
    assert hg.fill_crc(rec) == 0xFE172F9F
    rec["mode_machine"] = 5
    mc = rec["motor_cmd"]
    mc["mode"], mc["q"], mc["kp"], mc["kd"] = 1, 0.5, 60.0, 1.5
    assert hg.fill_crc(rec) == 0x85EDB5F6
    assert hg.check_crc(rec)


@pytest.mark.parametrize("n_words", [250, 522, 1, 7])
def test_crc_matches_the_bitwise_definition(n_words):
    words = np.random.default_rng(n_words).integers(0, 2**32, n_words, dtype=np.uint64)
    assert hg.crc32_core(words.astype(np.uint32)) == reference_crc(words)


def test_crc_covers_every_word_but_its_own():
    rec = random_low_state(np.random.default_rng(3))
    hg.fill_crc(rec)
    assert hg.check_crc(rec)
    rec["motor_state"]["q"][20] += 1e-3
    assert not hg.check_crc(rec)
    hg.fill_crc(rec)
    rec["crc"] = int(rec["crc"]) ^ 1
    assert not hg.check_crc(rec)


# ---- DDS types and the wire format ------------------------------------------------------------
cyclonedds = pytest.importorskip("cyclonedds")


def hand_written_idl():
    """The IDL of unitree_hg as Unitree publishes it, declared the long way."""
    import cyclonedds.idl.annotations as annotate
    import cyclonedds.idl.types as t
    from cyclonedds.idl import IdlStruct

    @dataclass
    @annotate.final
    @annotate.autoid("sequential")
    class MotorCmd_(IdlStruct, typename="unitree_hg.msg.dds_.MotorCmd_"):
        mode: t.uint8
        q: t.float32
        dq: t.float32
        tau: t.float32
        kp: t.float32
        kd: t.float32
        reserve: t.uint32

    @dataclass
    @annotate.final
    @annotate.autoid("sequential")
    class LowCmd_(IdlStruct, typename="unitree_hg.msg.dds_.LowCmd_"):
        mode_pr: t.uint8
        mode_machine: t.uint8
        motor_cmd: t.array[MotorCmd_, 35]
        reserve: t.array[t.uint32, 4]
        crc: t.uint32

    @dataclass
    @annotate.final
    @annotate.autoid("sequential")
    class IMUState_(IdlStruct, typename="unitree_hg.msg.dds_.IMUState_"):
        quaternion: t.array[t.float32, 4]
        gyroscope: t.array[t.float32, 3]
        accelerometer: t.array[t.float32, 3]
        rpy: t.array[t.float32, 3]
        temperature: t.int16

    @dataclass
    @annotate.final
    @annotate.autoid("sequential")
    class MotorState_(IdlStruct, typename="unitree_hg.msg.dds_.MotorState_"):
        mode: t.uint8
        q: t.float32
        dq: t.float32
        ddq: t.float32
        tau_est: t.float32
        temperature: t.array[t.int16, 2]
        vol: t.float32
        sensor: t.array[t.uint32, 2]
        motorstate: t.uint32
        reserve: t.array[t.uint32, 4]

    @dataclass
    @annotate.final
    @annotate.autoid("sequential")
    class LowState_(IdlStruct, typename="unitree_hg.msg.dds_.LowState_"):
        version: t.array[t.uint32, 2]
        mode_pr: t.uint8
        mode_machine: t.uint8
        tick: t.uint32
        imu_state: IMUState_
        motor_state: t.array[MotorState_, 35]
        wireless_remote: t.array[t.uint8, 40]
        reserve: t.array[t.uint32, 4]
        crc: t.uint32

    return LowCmd_, LowState_


def test_dds_type_names_and_type_ids_are_unitrees():
    types = hg.idl_types()
    ref_cmd, ref_state = hand_written_idl()
    for ours, ref, name in (
        (types.LowCmd_, ref_cmd, "LowCmd_"),
        (types.LowState_, ref_state, "LowState_"),
    ):
        assert ours.__idl__.idl_transformed_typename == f"unitree_hg::msg::dds_::{name}"
        # the XTypes identifier is what a DDS reader matches a writer's type on
        assert ours.__idl__.get_type_id() == ref.__idl__.get_type_id()


@pytest.mark.parametrize("kind", ["cmd", "state"])
def test_fast_wire_format_is_cyclonedds_own(kind):
    rng = np.random.default_rng(4)
    types = hg.idl_types()
    cls, rec = (
        (types.LowCmd_, random_low_cmd(rng))
        if kind == "cmd"
        else (types.LowState_, random_low_state(rng))
    )
    generic = cls(**hg._record_to_fields(rec, hg.LOW_CMD if kind == "cmd" else hg.LOW_STATE,
                                          vars(types)))  # fmt: skip
    wire = generic.serialize()
    assert cls.from_record(rec).serialize() == wire == hg.to_cdr(rec)
    # reading: the fast path gives back the record; the dataclass view agrees with cyclonedds
    sample = cls.deserialize(wire)
    assert hg.record_of(sample).tobytes() == rec.tobytes()
    assert sample == cls.__idl__.deserialize(wire)
    # XCDR2 and big-endian samples take the generic path and still arrive intact
    for data in (generic.serialize(use_version_2=True), generic.serialize(endianness=_big())):
        assert hg.record_of(cls.deserialize(data)).tobytes() == rec.tobytes()


def _big():
    from cyclonedds.idl._support import Endianness

    return Endianness.Big


def test_record_backed_sample_serializes_field_edits():
    types = hg.idl_types()
    rec = hg.new_low_cmd()
    sample = types.LowCmd_.from_record(rec)
    sample.motor_cmd[15].q = 0.25  # touching a field switches to the dataclass view
    assert hg.record_of(types.LowCmd_.deserialize(sample.serialize()))["motor_cmd"]["q"][15] == (
        np.float32(0.25)
    )


def test_network_interface_is_checked():
    assert hg.dds_config("") is None
    assert 'NetworkInterface name="eth0"' in hg.dds_config("eth0")
    with pytest.raises(ValueError, match="network_interface"):
        hg.dds_config('eth0"/><evil')


def test_crc_treats_padding_as_zero_whatever_is_in_memory():
    # a received record's padding can hold anything (NumPy copies structured arrays field by
    # field); the CRC is over the struct with zero padding, as the robot computes it
    rec = random_low_cmd(np.random.default_rng(5))
    clean = hg.record_crc(rec)
    raw = bytearray(rec.tobytes())
    raw[2:4] = b"\xab\xcd"  # the padding after mode_machine
    dirty = hg.unpack_low_cmd(bytes(raw))
    assert dirty.tobytes() != rec.tobytes()
    assert hg.record_crc(dirty) == clean
    assert hg.pack(dirty) == hg.pack(rec)
    assert hg.copy_record(dirty).tobytes() == dirty.tobytes()
