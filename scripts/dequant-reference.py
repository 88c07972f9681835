#!/usr/bin/env python3
"""Reference dequantisation with the `gguf` Python package, for ThemisBackendTests.

The Swift tests compare `Dequantize.row` with `gguf.quants.dequantize` (llama.cpp's own Python
port of ggml's dequantize_row_*), on synthetic blocks and on tensors of the real models.

usage:
  dequant-reference.py fixtures OUTDIR
      Writes deterministic synthetic blocks for every storage type as OUTDIR/<type>.bin and gguf's
      dequantisation of them as OUTDIR/<type>.f32 (little-endian float32). The committed fixtures
      in Tests/ThemisBackendTests/Fixtures were made this way.
  dequant-reference.py sample MODEL OUTDIR [--per-type N] [--rows R]
      Picks up to N tensors of each storage type in MODEL (first, last, evenly spaced between),
      dequantises their first R rows into OUTDIR/<i>.f32 and writes OUTDIR/manifest.json:
      {"tensors": [{"name", "type" (ggml type id), "offset" (absolute file offset of the data),
      "rowLength", "rows", "file"}]}.
  dequant-reference.py tensor MODEL NAME ROWS OUT
      Dequantises the first ROWS rows of tensor NAME into OUT and prints its manifest entry as JSON.

Exit status 3 means numpy or gguf is missing (python3 -m pip install gguf).
"""

import json
import os
import sys

try:
    import numpy as np
    import gguf
    from gguf import GGMLQuantizationType as T
    from gguf.quants import dequantize
except ImportError as error:
    sys.stderr.write(f"dequant-reference.py: {error}; install it with: python3 -m pip install gguf\n")
    sys.exit(3)

# Fixture file stems use StorageType.description in Swift (ggml's type names).
NAMES = {
    T.F32: "f32", T.F16: "f16", T.BF16: "bf16",
    T.Q4_0: "q4_0", T.Q4_1: "q4_1", T.Q5_0: "q5_0", T.Q5_1: "q5_1", T.Q8_0: "q8_0",
    T.Q4_K: "q4_K", T.Q5_K: "q5_K", T.Q6_K: "q6_K",
}

# Byte offsets of the f16 scale fields in each block (ggml-common.h struct layouts).
SCALE_FIELDS = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}

# Blocks per synthetic fixture: enough to hit every code path, small enough to commit.
BLOCKS_SMALL = 48
BLOCKS_K = 8
PLAIN_ELEMENTS = 512


def random_scales(rng, count):
    """Finite f16 scales over a wide range, with zero, -0, the extremes and subnormals first."""
    special = np.array([0.0, -0.0, 65504.0, -65504.0, 2.0 ** -24, -(2.0 ** -20), 1.0, -1.0])
    values = rng.standard_normal(count) * 10.0 ** rng.uniform(-6, 1, count)
    values[: min(count, len(special))] = special[: min(count, len(special))]
    return values.astype(np.float16)


def synthetic(qtype, rng):
    """(raw bytes, expected float32) for one storage type."""
    if qtype == T.F32:
        values = (rng.standard_normal(PLAIN_ELEMENTS) * 10.0 ** rng.uniform(-3, 3, PLAIN_ELEMENTS)).astype(np.float32)
        raw = values.view(np.uint8)
    elif qtype in (T.F16, T.BF16):
        bits = rng.integers(0, 1 << 16, PLAIN_ELEMENTS, dtype=np.uint32).astype(np.uint16)
        exponent_mask = 0x7C00 if qtype == T.F16 else 0x7F80
        mantissa_mask = 0x03FF if qtype == T.F16 else 0x007F
        # Replace NaNs (all-ones exponent, non-zero mantissa) so fixtures compare with ==.
        nan = ((bits & exponent_mask) == exponent_mask) & ((bits & mantissa_mask) != 0)
        bits[nan] &= np.uint16(0x83FF if qtype == T.F16 else 0x807F)
        bits[:6] = [0x0000, 0x8000, 0x0001, 0x7C00 if qtype == T.F16 else 0x7F80,
                    0xFC00 if qtype == T.F16 else 0xFF80, 0x3C00 if qtype == T.F16 else 0x3F80]
        raw = bits.view(np.uint8)
    else:
        block_size, type_size = gguf.GGML_QUANT_SIZES[qtype]
        count = BLOCKS_K if block_size == 256 else BLOCKS_SMALL
        raw = rng.integers(0, 256, (count, type_size), dtype=np.uint32).astype(np.uint8)
        for offset in SCALE_FIELDS[qtype]:
            raw[:, offset:offset + 2] = random_scales(rng, count).view(np.uint8).reshape(count, 2)
        raw = raw.reshape(-1)
    expected = np.asarray(dequantize(raw.copy(), qtype), dtype=np.float32).reshape(-1)
    return raw.tobytes(), expected.astype("<f4").tobytes()


def write_fixtures(outdir):
    os.makedirs(outdir, exist_ok=True)
    for qtype, name in NAMES.items():
        # One generator per type so adding a type does not change the others' fixtures.
        rng = np.random.default_rng(20240 + int(qtype))
        raw, expected = synthetic(qtype, rng)
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(raw)
        with open(os.path.join(outdir, name + ".f32"), "wb") as f:
            f.write(expected)
        print(f"{name}: {len(raw)} bytes -> {len(expected) // 4} floats")


def first_rows(tensor, rows):
    """(entry, float32 bytes) for the first `rows` rows of a ReaderTensor."""
    row_length = int(tensor.shape[0])
    total_rows = int(tensor.n_elements) // row_length
    rows = max(1, min(rows, total_rows))
    data = np.asarray(tensor.data).reshape(total_rows, -1)[:rows]
    values = np.asarray(dequantize(data, tensor.tensor_type), dtype=np.float32).reshape(-1)
    assert values.size == rows * row_length, (tensor.name, values.size, rows, row_length)
    entry = {
        "name": tensor.name, "type": int(tensor.tensor_type), "typeName": tensor.tensor_type.name,
        "offset": int(tensor.data_offset), "rowLength": row_length, "rows": rows,
    }
    return entry, values.astype("<f4").tobytes()


def sample(model, outdir, per_type, rows):
    os.makedirs(outdir, exist_ok=True)
    reader = gguf.GGUFReader(model)
    by_type = {}
    for tensor in reader.tensors:
        by_type.setdefault(tensor.tensor_type, []).append(tensor)
    entries = []
    for qtype, tensors in sorted(by_type.items()):
        count = min(per_type, len(tensors))
        picks = sorted({round(i * (len(tensors) - 1) / max(1, count - 1)) for i in range(count)})
        for pick in picks:
            entry, values = first_rows(tensors[pick], rows)
            entry["file"] = f"{len(entries)}.f32"
            with open(os.path.join(outdir, entry["file"]), "wb") as f:
                f.write(values)
            entries.append(entry)
    with open(os.path.join(outdir, "manifest.json"), "w") as f:
        json.dump({"model": model, "tensors": entries}, f, indent=1)


def one_tensor(model, name, rows, out):
    reader = gguf.GGUFReader(model)
    matches = [t for t in reader.tensors if t.name == name]
    if not matches:
        sys.exit(f"dequant-reference.py: no tensor {name!r} in {model}")
    entry, values = first_rows(matches[0], rows)
    with open(out, "wb") as f:
        f.write(values)
    entry["file"] = out
    print(json.dumps(entry))


def main(argv):
    if len(argv) == 3 and argv[1] == "fixtures":
        write_fixtures(argv[2])
    elif len(argv) >= 4 and argv[1] == "sample":
        per_type, rows = 2, 2
        options = argv[4:]
        while options:
            if len(options) < 2 or options[0] not in ("--per-type", "--rows"):
                sys.exit(__doc__)
            if options[0] == "--per-type":
                per_type = int(options[1])
            else:
                rows = int(options[1])
            options = options[2:]
        sample(argv[2], argv[3], per_type, rows)
    elif len(argv) == 6 and argv[1] == "tensor":
        one_tensor(argv[2], argv[3], int(argv[4]), argv[5])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
