"""unitree_hg low-level messages (Unitree G1) without ROS: layouts, CRC and the DDS types.

Unitree's robots speak plain DDS (CycloneDDS) on ``rt/lowstate`` (LowState_, 500 Hz) and take
commands on ``rt/lowcmd`` / ``rt/arm_sdk`` (LowCmd_). This module holds the messages three ways:

* **records**: NumPy structured scalars in the C struct layout (little-endian, natural
  alignment; LowCmd_ 1004 bytes, LowState_ 2092 bytes). This is what the bridge core edits, and
  what the CRC is defined over.
* **CDR**: the DDS wire bytes, converted to and from a record with one precomputed byte gather
  (``to_cdr`` / ``from_cdr``), about 100x faster than CycloneDDS's generic Python serializer,
  which matters at 500 Hz.
* **IDL types**: CycloneDDS ``IdlStruct`` dataclasses with Unitree's type names
  (``unitree_hg::msg::dds_::LowCmd_`` ...), built by ``idl_types()``. cyclonedds is imported there
  and nowhere else, so the rest of the package imports without it.

All three come from one field list per struct (``LOW_CMD`` ...), written in IDL order.

Unitree's CRC (crc32_core): the record is read as little-endian uint32 words and every word but
the last (the ``crc`` field) is fed MSB first through CRC-32 with polynomial 0x04C11DB7, initial
value 0xFFFFFFFF, no reflection and no final XOR. The robot drops a command whose CRC is wrong.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

NUM_MOTORS = 35  # motor slots in LowCmd_/LowState_ (29 joints on a 29-DoF G1, the rest spare)
TYPE_PREFIX = "unitree_hg.msg.dds_."
TOPIC_LOWSTATE = "rt/lowstate"
TOPIC_LOWCMD = "rt/lowcmd"
TOPIC_ARM_SDK = "rt/arm_sdk"


@dataclass(frozen=True)
class Struct:
    """One IDL struct: ``fields`` are (name, primitive code or Struct, count); count 0 = scalar.
    Primitive codes are NumPy's: u1 uint8, i2 int16, u4 uint32, f4 float32."""

    name: str
    fields: tuple[tuple[str, str | Struct, int], ...]

    @property
    def typename(self) -> str:
        return TYPE_PREFIX + self.name


MOTOR_CMD = Struct(
    "MotorCmd_",
    (
        ("mode", "u1", 0),
        ("q", "f4", 0),
        ("dq", "f4", 0),
        ("tau", "f4", 0),
        ("kp", "f4", 0),
        ("kd", "f4", 0),
        ("reserve", "u4", 0),
    ),
)
LOW_CMD = Struct(
    "LowCmd_",
    (
        ("mode_pr", "u1", 0),
        ("mode_machine", "u1", 0),
        ("motor_cmd", MOTOR_CMD, NUM_MOTORS),
        ("reserve", "u4", 4),
        ("crc", "u4", 0),
    ),
)
IMU_STATE = Struct(
    "IMUState_",
    (
        ("quaternion", "f4", 4),  # w, x, y, z
        ("gyroscope", "f4", 3),
        ("accelerometer", "f4", 3),
        ("rpy", "f4", 3),
        ("temperature", "i2", 0),
    ),
)
MOTOR_STATE = Struct(
    "MotorState_",
    (
        ("mode", "u1", 0),
        ("q", "f4", 0),
        ("dq", "f4", 0),
        ("ddq", "f4", 0),
        ("tau_est", "f4", 0),
        ("temperature", "i2", 2),
        ("vol", "f4", 0),
        ("sensor", "u4", 2),
        ("motorstate", "u4", 0),
        ("reserve", "u4", 4),
    ),
)
LOW_STATE = Struct(
    "LowState_",
    (
        ("version", "u4", 2),
        ("mode_pr", "u1", 0),
        ("mode_machine", "u1", 0),
        ("tick", "u4", 0),
        ("imu_state", IMU_STATE, 0),
        ("motor_state", MOTOR_STATE, NUM_MOTORS),
        ("wireless_remote", "u1", 40),
        ("reserve", "u4", 4),
        ("crc", "u4", 0),
    ),
)


def struct_dtype(struct: Struct) -> np.dtype:
    """The C layout of ``struct`` (little-endian, natural alignment) as a NumPy dtype."""
    fields = []
    for name, kind, count in struct.fields:
        base = struct_dtype(kind) if isinstance(kind, Struct) else np.dtype("<" + kind)
        fields.append((name, base, (count,)) if count else (name, base))
    return np.dtype(fields, align=True)


LOW_CMD_DTYPE = struct_dtype(LOW_CMD)
LOW_STATE_DTYPE = struct_dtype(LOW_STATE)
LOW_CMD_SIZE = LOW_CMD_DTYPE.itemsize  # 1004
LOW_STATE_SIZE = LOW_STATE_DTYPE.itemsize  # 2092
_STRUCT_OF = {LOW_CMD_DTYPE: LOW_CMD, LOW_STATE_DTYPE: LOW_STATE}


def new_low_cmd() -> np.ndarray:
    """An all-zero LowCmd_ record (a 0-d structured array; edit fields in place)."""
    return np.zeros((), dtype=LOW_CMD_DTYPE)


def new_low_state() -> np.ndarray:
    """An all-zero LowState_ record."""
    return np.zeros((), dtype=LOW_STATE_DTYPE)


def _check_record(record: np.ndarray) -> None:
    if not isinstance(record, np.ndarray) or record.dtype not in (LOW_CMD_DTYPE, LOW_STATE_DTYPE):
        raise ValueError(
            "record: expected a LowCmd_ or LowState_ record (new_low_cmd/new_low_state), "
            f"got {type(record).__name__} {getattr(record, 'dtype', '')}"
        )


def copy_record(record: np.ndarray) -> np.ndarray:
    """A byte-exact copy. (``ndarray.copy()`` of a structured array copies field by field and
    leaves the padding bytes uninitialized - and the CRC covers the padding.)"""
    return np.frombuffer(bytearray(record.tobytes()), dtype=record.dtype).reshape(())


def pack(record: np.ndarray) -> bytes:
    """A LowCmd_/LowState_ record as its C struct bytes (1004 / 2092), padding bytes zero - the
    bytes the CRC is computed over."""
    _check_record(record)
    fields = _cdr_map(_STRUCT_OF[record.dtype]).c_index
    out = np.zeros(record.dtype.itemsize, dtype=np.uint8)
    out[fields] = np.frombuffer(record.tobytes(), dtype=np.uint8)[fields]
    return out.tobytes()


def _unpack(data: bytes, dtype: np.dtype, what: str) -> np.ndarray:
    if len(data) != dtype.itemsize:
        raise ValueError(f"{what}: expected {dtype.itemsize} bytes, got {len(data)}")
    return np.frombuffer(bytearray(data), dtype=dtype).reshape(())


def unpack_low_cmd(data: bytes) -> np.ndarray:
    """C struct bytes (1004) -> LowCmd_ record. Raises ValueError on a wrong size."""
    return _unpack(data, LOW_CMD_DTYPE, "LowCmd_")


def unpack_low_state(data: bytes) -> np.ndarray:
    """C struct bytes (2092) -> LowState_ record. Raises ValueError on a wrong size."""
    return _unpack(data, LOW_STATE_DTYPE, "LowState_")


# ---- CRC ---------------------------------------------------------------------------------------
_POLY = 0x04C11DB7


def _shift(crc: int) -> int:
    return ((crc << 1) & 0xFFFFFFFF) ^ (_POLY if crc & 0x80000000 else 0)


@functools.lru_cache(maxsize=8)
def _crc_tables(n_words: int) -> tuple[int, np.ndarray]:
    """The CRC is affine in the message bits: crc = init_term XOR (XOR of one constant per set
    bit). Precomputed once per message length: the constant for bit k (MSB-first order) is the
    polynomial shifted through the bits that follow it."""
    n_bits = 32 * n_words
    contrib = np.empty(n_bits, dtype=np.uint32)
    c = _POLY
    for k in range(n_bits - 1, -1, -1):
        contrib[k] = c
        c = _shift(c)
    init = 0xFFFFFFFF
    for _ in range(n_bits):
        init = _shift(init)
    return init, contrib


def crc32_core(words: np.ndarray) -> int:
    """Unitree's crc32_core over ``words`` (uint32, in message order). Costs ~20-40 us for a
    LowState_ after the first call for a given length (which builds its table, ~10 ms)."""
    w = np.ascontiguousarray(words, dtype=np.uint32).reshape(-1)
    init, contrib = _crc_tables(w.size)
    bits = np.unpackbits(w.astype(">u4").view(np.uint8)).view(bool)
    return int(init ^ np.bitwise_xor.reduce(contrib[bits]))


def record_crc(record: np.ndarray) -> int:
    """The CRC ``record`` should carry: over all its words but the last (the crc field)."""
    words = np.frombuffer(pack(record), dtype="<u4")
    return crc32_core(words[:-1])


def fill_crc(record: np.ndarray) -> int:
    """Compute and store ``record['crc']``; returns it."""
    crc = record_crc(record)
    record["crc"] = crc
    return crc


def check_crc(record: np.ndarray) -> bool:
    """True when ``record['crc']`` matches its contents."""
    return int(record["crc"]) == record_crc(record)


# ---- CDR (the DDS wire format) -----------------------------------------------------------------
@dataclass(frozen=True)
class _CdrMap:
    """Where each byte of the C layout sits in the CDR body. CDR aligns every primitive to its
    own size counted from the body start, but (unlike C) pads neither struct starts nor ends."""

    c_index: np.ndarray
    cdr_index: np.ndarray
    body_size: int  # padded to 4 bytes, as CycloneDDS sends it


def _primitives(struct: Struct, dtype: np.dtype, base: int):  # noqa: ANN202
    for name, kind, count in struct.fields:
        sub, offset = dtype.fields[name][:2]
        elem = sub.base if count else sub
        for i in range(max(count, 1)):
            at = base + offset + i * elem.itemsize
            if isinstance(kind, Struct):
                yield from _primitives(kind, elem, at)
            else:
                yield at, elem.itemsize


@functools.lru_cache(maxsize=4)
def _cdr_map(struct: Struct) -> _CdrMap:
    dtype = struct_dtype(struct)
    c_index, cdr_index, pos = [], [], 0
    for c_off, size in _primitives(struct, dtype, 0):
        if size > 4:  # XCDR1 and XCDR2 would align 8-byte types differently
            raise ValueError(f"{struct.name}: 8-byte primitives are not supported")
        pos = -(-pos // size) * size
        c_index.extend(range(c_off, c_off + size))
        cdr_index.extend(range(pos, pos + size))
        pos += size
    return _CdrMap(
        np.asarray(c_index, dtype=np.intp), np.asarray(cdr_index, dtype=np.intp), -(-pos // 4) * 4
    )


# encapsulation identifier CDR_LE (XCDR1, little-endian): what CycloneDDS writes for these final
# types by default, on the robot as here. XCDR2 puts a length header before arrays of structs;
# such samples (and big-endian ones) take CycloneDDS's generic path instead.
_HEADER_XCDR1_LE = b"\x00\x01\x00\x00"


def to_cdr(record: np.ndarray) -> bytes:
    """A record as a serialized DDS sample: XCDR1 little-endian (4-byte header + body)."""
    _check_record(record)
    m = _cdr_map(_STRUCT_OF[record.dtype])
    body = np.zeros(m.body_size, dtype=np.uint8)
    body[m.cdr_index] = np.frombuffer(record.tobytes(), dtype=np.uint8)[m.c_index]
    return _HEADER_XCDR1_LE + body.tobytes()


def from_cdr(data: bytes, dtype: np.dtype) -> np.ndarray | None:
    """A serialized sample -> record of ``dtype``, or None when it is not XCDR1 little-endian
    (the caller falls back to CycloneDDS's generic deserializer). Raises ValueError when the
    sample is too short."""
    if data[:2] != _HEADER_XCDR1_LE[:2]:
        return None
    m = _cdr_map(_STRUCT_OF[dtype])
    body = np.frombuffer(data, dtype=np.uint8, offset=4)
    if body.size < m.cdr_index[-1] + 1:
        raise ValueError(f"{_STRUCT_OF[dtype].name}: sample of {len(data)} bytes is too short")
    raw = np.zeros(dtype.itemsize, dtype=np.uint8)
    raw[m.c_index] = body[m.cdr_index]
    return raw.view(dtype).reshape(())


# ---- CycloneDDS IDL types ----------------------------------------------------------------------
def _fields_to_record(obj: Any, struct: Struct, out: np.ndarray) -> None:
    for name, kind, count in struct.fields:
        value = getattr(obj, name)
        if isinstance(kind, Struct):
            items = value if count else [value]
            for i, item in enumerate(items):
                _fields_to_record(item, kind, out[name][i] if count else out[name])
        elif isinstance(value, (bytes, bytearray)):  # the generic reader gives uint8[] as bytes
            out[name] = np.frombuffer(value, dtype=np.uint8)
        else:
            out[name] = value


def _record_to_fields(record: np.ndarray, struct: Struct, classes: dict[str, type]) -> dict:
    values: dict[str, Any] = {}
    for name, kind, count in struct.fields:
        v = record[name]
        if isinstance(kind, Struct):
            cls = classes[kind.name]
            if count:
                values[name] = [cls(**_record_to_fields(v[i], kind, classes)) for i in range(count)]
            else:
                values[name] = cls(**_record_to_fields(v, kind, classes))
        elif kind == "u1" and count:
            values[name] = v.tobytes()  # cyclonedds represents uint8[N] as bytes
        else:
            values[name] = v.tolist()
    return values


def record_of(sample: Any) -> np.ndarray:
    """The record behind an IDL LowCmd_/LowState_ sample (read or built with ``from_record``),
    or one converted from its dataclass fields."""
    rec = sample.__dict__.get("_record")
    if rec is not None:
        return rec
    struct = {LOW_CMD.name: LOW_CMD, LOW_STATE.name: LOW_STATE}[type(sample).__name__]
    out = np.zeros((), dtype=struct_dtype(struct))
    _fields_to_record(sample, struct, out)
    return out


@functools.cache
def idl_types() -> SimpleNamespace:
    """CycloneDDS types MotorCmd_, LowCmd_, IMUState_, MotorState_, LowState_ (final, sequential
    ids: what Unitree's idlc output declares, so the XTypes type ids match the robot's).

    LowCmd_ and LowState_ carry a fast path: ``LowCmd_.from_record(rec)`` makes a sample whose
    serialization is ``to_cdr(rec)``, and reading a little-endian sample returns one backed by its
    record (``record_of(sample)``); their dataclass fields are filled in on first access.
    """
    import cyclonedds.idl.annotations as annotate
    import cyclonedds.idl.types as t
    from cyclonedds.idl import IdlStruct, make_idl_struct

    primitive = {"u1": t.uint8, "i2": t.int16, "u4": t.uint32, "f4": t.float32}
    classes: dict[str, type] = {}

    def build(struct: Struct) -> type:
        fields: dict[str, Any] = {}
        for name, kind, count in struct.fields:
            base = build(kind) if isinstance(kind, Struct) else primitive[kind]
            fields[name] = t.array[base, count] if count else base
        cls = make_idl_struct(struct.name, struct.typename, fields)
        cls = annotate.autoid("sequential")(annotate.final(cls))
        classes[struct.name] = cls
        return cls

    for struct in (LOW_CMD, LOW_STATE):
        cls = build(struct)
        _add_fast_path(cls, struct, struct_dtype(struct), classes, IdlStruct)
    return SimpleNamespace(**classes)


def _add_fast_path(
    cls: type, struct: Struct, dtype: np.dtype, classes: dict[str, type], idl_base: type
) -> None:
    field_names = {name for name, _, _ in struct.fields}

    def from_record(klass: type, record: np.ndarray) -> Any:
        if record.dtype != dtype:
            raise ValueError(f"{struct.name}.from_record: expected a {struct.name} record")
        obj = object.__new__(klass)
        obj.__dict__["_record"] = copy_record(record)
        return obj

    def __getattr__(self: Any, name: str) -> Any:  # noqa: N807
        # only reached for fields not yet filled in: materialize them from the record once, and
        # forget the record so that edits to the fields are what gets serialized afterwards
        rec = self.__dict__.get("_record")
        if name not in field_names or rec is None:
            raise AttributeError(name)
        self.__dict__.update(_record_to_fields(rec, struct, classes))
        del self.__dict__["_record"]
        return self.__dict__[name]

    def serialize(self: Any, buffer: Any = None, endianness: Any = None, use_version_2: Any = None):  # noqa: ANN202
        rec = self.__dict__.get("_record")
        if use_version_2 is None:
            use_version_2 = cls.__idl__.default_version == 2
        if rec is None or buffer is not None or endianness is not None or use_version_2:
            return idl_base.serialize(self, buffer, endianness, use_version_2)
        return to_cdr(rec)

    def deserialize(klass: type, data: bytes, has_header: bool = True, use_version_2: Any = None):  # noqa: ANN202
        rec = from_cdr(data, dtype) if has_header else None
        if rec is None:
            return klass.__idl__.deserialize(
                data, has_header=has_header, use_version_2=use_version_2
            )
        obj = object.__new__(klass)
        obj.__dict__["_record"] = rec
        return obj

    cls.from_record = classmethod(from_record)
    cls.__getattr__ = __getattr__
    cls.serialize = serialize
    cls.deserialize = classmethod(deserialize)


def dds_config(network_interface: str) -> str | None:
    """CycloneDDS configuration pinning DDS to one network interface (on a G1 the one on
    192.168.123.x), or None for CycloneDDS's defaults (CYCLONEDDS_URI, then automatic)."""
    if not network_interface:
        return None
    if not all(ch.isalnum() or ch in "._-:" for ch in network_interface):
        raise ValueError(f"network_interface: {network_interface!r} is not an interface name")
    return (
        '<CycloneDDS><Domain id="any"><General><Interfaces>'
        f'<NetworkInterface name="{network_interface}"/>'
        "</Interfaces></General></Domain></CycloneDDS>"
    )


def open_participant(domain_id: int, network_interface: str = "") -> tuple[Any, Any]:
    """A CycloneDDS DomainParticipant on ``domain_id`` (0 on a G1), optionally pinned to one
    interface. Returns (participant, domain); keep the domain alive as long as the participant."""
    from cyclonedds.domain import Domain, DomainParticipant

    if not 0 <= domain_id <= 232:
        raise ValueError(f"dds_domain: must be in [0, 232], got {domain_id}")
    config = dds_config(network_interface)
    domain = Domain(domain_id, config) if config else None
    return DomainParticipant(domain_id), domain


_TOPIC_TYPES = {TOPIC_LOWSTATE: "LowState_", TOPIC_LOWCMD: "LowCmd_", TOPIC_ARM_SDK: "LowCmd_"}


class DdsLink:
    """One CycloneDDS participant that reads one unitree_hg topic and writes another, records
    in and out. The bridge reads rt/lowstate and writes rt/arm_sdk; a stand-in robot the reverse.

    QoS as Unitree's SDK channels use them: writers reliable keep-last 1 (CycloneDDS's default);
    the reader best effort unless ``reliable_read`` (a test robot that must see every command).
    ``take`` blocks in C (the GIL is released) until data arrives or ``timeout_s`` passes.
    """

    def __init__(
        self,
        domain_id: int,
        network_interface: str = "",
        *,
        read: str,
        write: str,
        reliable_read: bool = False,
        read_depth: int = 16,
    ) -> None:
        from cyclonedds.core import (
            InstanceState,
            Policy,
            Qos,
            ReadCondition,
            SampleState,
            ViewState,
            WaitSet,
        )
        from cyclonedds.pub import DataWriter
        from cyclonedds.sub import DataReader
        from cyclonedds.topic import Topic
        from cyclonedds.util import duration

        for field, topic in (("read", read), ("write", write)):
            if topic not in _TOPIC_TYPES:
                raise ValueError(f"{field}: unknown unitree_hg topic {topic!r}")
        types = idl_types()
        self._duration = duration
        self.participant, self._domain = open_participant(domain_id, network_interface)
        reliability = (
            Policy.Reliability.Reliable(max_blocking_time=duration(milliseconds=10))
            if reliable_read
            else Policy.Reliability.BestEffort
        )
        self._reader = DataReader(
            self.participant,
            Topic(self.participant, read, getattr(types, _TOPIC_TYPES[read])),
            qos=Qos(reliability, Policy.History.KeepLast(read_depth)),
        )
        self._write_type = getattr(types, _TOPIC_TYPES[write])
        self._writer = DataWriter(
            self.participant, Topic(self.participant, write, self._write_type)
        )
        self._waitset = WaitSet(self.participant)
        self._condition = ReadCondition(
            self._reader, SampleState.Any | ViewState.Any | InstanceState.Any
        )
        self._waitset.attach(self._condition)

    def write(self, record: np.ndarray) -> None:
        """Publish a record (its CRC must already be filled)."""
        self._writer.write(self._write_type.from_record(record))

    def take(self, timeout_s: float) -> list[np.ndarray]:
        """Every sample received since the last call, oldest first (waits up to ``timeout_s``
        for the first one)."""
        if timeout_s > 0:
            self._waitset.wait(self._duration(seconds=timeout_s))
        samples = self._reader.take(N=256)
        return [record_of(s) for s in samples if s.sample_info.valid_data]

    def subscribers(self) -> int:
        """Readers currently matched to our writer."""
        return len(self._writer.get_matched_subscriptions())

    def close(self) -> None:
        """Delete the participant (and so every entity under it) now rather than at exit."""
        self._waitset.detach(self._condition)
        self.participant.__del__()
