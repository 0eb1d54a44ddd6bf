"""TF32 as the doubles simulate it (tests only): the float inputs of MatMul/Gemm/Conv/ConvTranspose rounded to a
10-bit mantissa (an fp16 round trip stands in for TF32's rounding; BuilderFlag::kTF32: "TF32 computes inner
products by rounding the inputs to 10-bit mantissas before multiplying, but accumulates the sum using 23-bit
mantissas", NvInfer.h release/10.13). Shared by the TensorRT double and the TensorRT-EP double."""

import onnx
from onnx import helper

TF32_OPS = {"MatMul": (0, 1), "Gemm": (0, 1), "Conv": (0, 1), "ConvTranspose": (0, 1)}


def with_tf32_rounding(data: bytes) -> bytes:
    """The model with the float inputs of MatMul/Gemm/Conv rounded to a 10-bit mantissa (fp16 round trip)."""
    model = onnx.load_from_string(data)
    inferred = onnx.shape_inference.infer_shapes(model)
    types = {v.name: v.type.tensor_type.elem_type for v in
             list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output)}
    types.update({i.name: i.data_type for i in model.graph.initializer})
    nodes, count = [], 0
    for node in model.graph.node:
        for slot in TF32_OPS.get(node.op_type, ()) if node.domain in ("", "ai.onnx") else ():
            if slot < len(node.input) and types.get(node.input[slot]) == onnx.TensorProto.FLOAT:
                count += 1
                half, back = f"__tf32_half_{count}", f"__tf32_{count}"
                nodes += [helper.make_node("Cast", [node.input[slot]], [half], to=onnx.TensorProto.FLOAT16),
                          helper.make_node("Cast", [half], [back], to=onnx.TensorProto.FLOAT)]
                node.input[slot] = back
        nodes.append(node)
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model.SerializeToString()
