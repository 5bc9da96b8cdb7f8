"""The ONNX checker (Debian python3-onnx) on a modax-ml export.

usage: onnx_check.py model.onnx

Runs onnx.checker.check_model(m, full_check=True) (structure, operator
schemas for the model's opset, IR/opset compatibility, and strict shape
inference), then prints one JSON line describing the model: IR version,
opsets, inputs/outputs with their shapes, node types, inferred output shape,
metadata keys. Exits 1 with the checker's message on failure.
"""
import json
import sys

import onnx
from onnx import shape_inference


def dims(vi):
    return [d.dim_param or d.dim_value for d in vi.type.tensor_type.shape.dim]


def main():
    path = sys.argv[1]
    m = onnx.load(path)
    try:
        onnx.checker.check_model(m, full_check=True)
    except Exception as e:  # noqa: BLE001 - report whatever the checker raises
        print(f"onnx checker: {type(e).__name__}: {e}", file=sys.stderr)
        sys.exit(1)
    inferred = shape_inference.infer_shapes(m, check_type=True, strict_mode=True)
    print(json.dumps({
        "onnx": onnx.__version__,
        "ir_version": m.ir_version,
        "opsets": {o.domain or "ai.onnx": o.version for o in m.opset_import},
        "inputs": {i.name: dims(i) for i in m.graph.input},
        "outputs": {o.name: dims(o) for o in inferred.graph.output},
        "nodes": [n.op_type for n in m.graph.node],
        "lstm_outputs": [list(n.output) for n in m.graph.node if n.op_type == "LSTM"],
        "metadata": sorted(p.key for p in m.metadata_props),
    }))


if __name__ == "__main__":
    main()
