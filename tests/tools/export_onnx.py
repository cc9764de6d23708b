#!/usr/bin/env python3
"""Exports the teacher (HF BERT safetensors) to ONNX for the transformers.js peer of the browser
bench, and checks the export against the PyTorch reference outputs.

    python export_onnx.py models/teacher tests/fixtures/all-minilm-l6-v2/reference.json OUT

Writes OUT/{config.json, tokenizer.json, tokenizer_config.json, onnx/model.onnx,
onnx/model_quantized.onnx} — the layout transformers.js loads a local model from ("fp32" and
"q8"). Needs numpy, onnx and onnxruntime (./build.sh bench-web installs them in a venv under
.cache/); no torch: the graph is written op by op from the config, the BERT of
`BertModel.forward` (post-LN, erf GELU, additive attention mask), output `last_hidden_state`.
q8 is onnxruntime's dynamic quantisation (uint8 weights), as the transformers.js conversion
script makes it. Both files must reproduce the reference mean-pooled embeddings: fp32 to
cosine ≥ 0.9999, q8 is reported (it is lossy by design).
"""
import json
import os
import shutil
import struct
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    kinds = {"F32": np.float32, "F16": np.float16, "I64": np.int64}
    out = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        a, b = meta["data_offsets"]
        out[name] = np.frombuffer(data[a:b], dtype=kinds[meta["dtype"]]).reshape(meta["shape"])
    # Names with or without the "bert." prefix.
    return {k[5:] if k.startswith("bert.") else k: v for k, v in out.items()}


def build(config, w):
    hidden, heads = config["hidden_size"], config["num_attention_heads"]
    head_dim = hidden // heads
    eps = config.get("layer_norm_eps", 1e-12)
    nodes, inits = [], []
    counter = [0]

    def name(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def const(array, prefix="c"):
        n = name(prefix)
        inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def op(kind, inputs, **attrs):
        out = name(kind.lower())
        nodes.append(helper.make_node(kind, inputs, [out], **attrs))
        return out

    def linear(x, prefix):
        weight = const(w[f"{prefix}.weight"].astype(np.float32).T.copy(), prefix.replace(".", "_") + "_w")
        bias = const(w[f"{prefix}.bias"].astype(np.float32), prefix.replace(".", "_") + "_b")
        return op("Add", [op("MatMul", [x, weight]), bias])

    def layer_norm(x, prefix):
        return op("LayerNormalization", [x, const(w[f"{prefix}.weight"].astype(np.float32)),
                                         const(w[f"{prefix}.bias"].astype(np.float32))], axis=-1, epsilon=eps)

    ids, mask, types = "input_ids", "attention_mask", "token_type_ids"
    seq = op("Gather", [op("Shape", [ids]), const(np.array(1, dtype=np.int64))], axis=0)
    positions = op("Unsqueeze", [op("Range", [const(np.array(0, dtype=np.int64)), seq, const(np.array(1, dtype=np.int64))]),
                                 const(np.array([0], dtype=np.int64))])
    emb = op("Add", [op("Gather", [const(w["embeddings.word_embeddings.weight"].astype(np.float32)), ids]),
                     op("Gather", [const(w["embeddings.position_embeddings.weight"].astype(np.float32)), positions])])
    emb = op("Add", [emb, op("Gather", [const(w["embeddings.token_type_embeddings.weight"].astype(np.float32)), types])])
    x = layer_norm(emb, "embeddings.LayerNorm")
    # Additive mask [batch, 1, 1, seq]: 0 where attended, the float minimum where padded.
    m = op("Cast", [mask], to=TensorProto.FLOAT)
    m = op("Mul", [op("Sub", [const(np.array(1, dtype=np.float32)), m]), const(np.array(np.finfo(np.float32).min, dtype=np.float32))])
    m = op("Unsqueeze", [m, const(np.array([1, 2], dtype=np.int64))])
    split = const(np.array([0, 0, heads, head_dim], dtype=np.int64))
    merge = const(np.array([0, 0, hidden], dtype=np.int64))
    scale = const(np.array(1 / np.sqrt(head_dim), dtype=np.float32))
    for i in range(config["num_hidden_layers"]):
        p = f"encoder.layer.{i}"
        q = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.query"), split])], perm=[0, 2, 1, 3])
        k = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.key"), split])], perm=[0, 2, 3, 1])
        v = op("Transpose", [op("Reshape", [linear(x, f"{p}.attention.self.value"), split])], perm=[0, 2, 1, 3])
        scores = op("Add", [op("Mul", [op("MatMul", [q, k]), scale]), m])
        ctx = op("MatMul", [op("Softmax", [scores], axis=-1), v])
        ctx = op("Reshape", [op("Transpose", [ctx], perm=[0, 2, 1, 3]), merge])
        x = layer_norm(op("Add", [linear(ctx, f"{p}.attention.output.dense"), x]), f"{p}.attention.output.LayerNorm")
        h = linear(x, f"{p}.intermediate.dense")
        # GELU (erf form, as BERT's "gelu").
        h = op("Mul", [op("Mul", [h, const(np.array(0.5, dtype=np.float32))]),
                       op("Add", [op("Erf", [op("Div", [h, const(np.array(np.sqrt(2.0), dtype=np.float32))])]),
                                  const(np.array(1, dtype=np.float32))])])
        x = layer_norm(op("Add", [linear(h, f"{p}.output.dense"), x]), f"{p}.output.LayerNorm")
    nodes.append(helper.make_node("Identity", [x], ["last_hidden_state"]))
    inputs = [helper.make_tensor_value_info(n, TensorProto.INT64, ["batch_size", "sequence_length"]) for n in (ids, mask, types)]
    outputs = [helper.make_tensor_value_info("last_hidden_state", TensorProto.FLOAT, ["batch_size", "sequence_length", hidden])]
    graph = helper.make_graph(nodes, "bert", inputs, outputs, inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="ranklet export_onnx.py")
    # The IR version of ONNX 1.13 (opset 17): newer onnx packages write IR versions that ONNX
    # Runtime Web does not read yet.
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def mean_pooled(session, input_ids):
    ids = np.array([input_ids], dtype=np.int64)
    hidden = session.run(["last_hidden_state"], {"input_ids": ids, "attention_mask": np.ones_like(ids), "token_type_ids": np.zeros_like(ids)})[0][0]
    v = hidden.mean(axis=0)
    return v / np.linalg.norm(v)


def main(teacher, reference, out):
    import onnxruntime as ort
    from onnxruntime.quantization import QuantType, quantize_dynamic

    config = json.load(open(os.path.join(teacher, "config.json")))
    weights = read_safetensors(os.path.join(teacher, "model.safetensors"))
    os.makedirs(os.path.join(out, "onnx"), exist_ok=True)
    fp32 = os.path.join(out, "onnx", "model.onnx")
    q8 = os.path.join(out, "onnx", "model_quantized.onnx")
    onnx.save(build(config, weights), fp32 + ".partial")
    os.replace(fp32 + ".partial", fp32)
    quantize_dynamic(fp32, q8 + ".partial", weight_type=QuantType.QUInt8)
    os.replace(q8 + ".partial", q8)
    for f in ("config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        if os.path.exists(os.path.join(teacher, f)):
            shutil.copyfile(os.path.join(teacher, f), os.path.join(out, f))
    ref = json.load(open(reference))
    report = {}
    for label, path in (("fp32", fp32), ("q8", q8)):
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        cosines = []
        for item in ref["items"]:
            if not item["input_ids"]:
                continue
            want = np.array(item["embedding"], dtype=np.float32)
            got = mean_pooled(session, item["input_ids"])
            cosines.append(float(np.dot(got, want) / np.linalg.norm(want)))
        report[label] = {"min_cosine_to_reference": min(cosines), "texts": len(cosines), "bytes": os.path.getsize(path)}
    print(json.dumps(report, indent=2))
    if report["fp32"]["min_cosine_to_reference"] < 0.9999:
        sys.exit(f"the fp32 export does not reproduce the reference (min cosine {report['fp32']['min_cosine_to_reference']})")
    with open(os.path.join(out, "export.json"), "w") as f:
        json.dump(report, f, indent=2)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])
