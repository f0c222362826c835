"""The model catalog: listing, resolving refs and files, and each bad input's clear error."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest
from wattbench.backends.models import builtin, catalog, inputs
from wattbench.domain.errors import ModelError, ShapeError

BUILTIN_KEYS = {
    "mlp", "mlp-small", "mlp-tiny", "resnet50", "resnet-small",
    "bert-base", "bert-small", "gpt2", "gpt-small",
}  # fmt: skip


def test_list_models_has_every_builtin_and_every_onnx_test_model() -> None:
    refs = {e.ref for e in catalog.list_models()}
    assert {f"builtin:{k}" for k in BUILTIN_KEYS} <= refs
    root = catalog.zoo_dir()
    assert root is not None
    on_disk = {p.stem.removeprefix("light_") for p in root.glob("*.onnx")}
    assert on_disk, "the onnx package ships test models"
    assert {f"onnx-zoo:{n}" for n in on_disk} <= refs


def test_builtin_entries_declare_inputs_and_generation() -> None:
    bert = catalog.resolve_model("builtin:bert-small")
    assert [s.name for s in bert.inputs] == ["input_ids", "attention_mask"]
    assert bert.inputs[0].shape == ("batch", "seq_len")
    assert dict(bert.default_dims) == {"seq_len": 128}
    assert catalog.resolve_model("builtin:gpt-small").generative
    assert not catalog.resolve_model("builtin:resnet-small").generative
    resnet50 = catalog.resolve_model("builtin:resnet50")
    assert resnet50.parameters is not None and 25e6 < resnet50.parameters < 26e6


def test_builtin_parameter_count_matches_the_built_module() -> None:
    for key in ("mlp-tiny", "resnet-small", "bert-small", "gpt-small"):
        module = builtin.build_module(key)
        counted = sum(p.numel() for p in module.parameters())
        assert builtin.parameter_count(builtin.get(key)) == counted, key


def test_zoo_entry_reads_real_inputs_not_initializers() -> None:
    e = catalog.resolve_model("onnx-zoo:squeezenet")
    assert e.format == "onnx" and e.family == "onnx-zoo"
    assert [(s.name, s.shape, s.dtype) for s in e.inputs] == [
        ("data_0", (1, 3, 224, 224), "float32")
    ]
    assert e.parameters is not None and e.parameters > 1_000_000  # weights built in-graph


def test_concrete_inputs_fix_batch_and_dims() -> None:
    e = catalog.resolve_model("builtin:bert-small")
    got = catalog.concrete_inputs(e, 4, {"seq_len": 32})
    assert got == [("input_ids", (4, 32), "int64"), ("attention_mask", (4, 32), "int64")]
    assert catalog.concrete_inputs(e, 1)[0][1] == (1, 128)  # default seq_len


def test_missing_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="does not exist"):
        catalog.resolve_model(str(tmp_path / "nope.onnx"))


def test_text_file_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "notes.onnx"
    path.write_text("this is not a model\n")
    with pytest.raises(ModelError, match="is not an ONNX file"):
        catalog.resolve_model(str(path))


def test_empty_file_is_not_onnx(tmp_path: Path) -> None:
    path = tmp_path / "empty.onnx"
    path.write_bytes(b"")
    with pytest.raises(ModelError, match="empty"):
        catalog.resolve_model(str(path))


def test_truncated_onnx_is_corrupt(tmp_path: Path) -> None:
    root = catalog.zoo_dir()
    assert root is not None
    data = (root / "light_squeezenet.onnx").read_bytes()
    path = tmp_path / "cut.onnx"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelError, match="corrupt"):
        catalog.resolve_model(str(path))


def test_invalid_graph_is_corrupt(tmp_path: Path) -> None:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])
    node = helper.make_node("Relu", ["missing_input"], ["y"])  # reads a tensor nobody makes
    model = helper.make_model(helper.make_graph([node], "g", [x], [y]))
    path = tmp_path / "bad_graph.onnx"
    onnx.save(model, str(path))
    with pytest.raises(ModelError, match="corrupt or invalid"):
        catalog.resolve_model(str(path))


def _dynamic_onnx(tmp_path: Path) -> Path:
    import onnx
    from onnx import TensorProto, helper

    x = helper.make_tensor_value_info("tokens", TensorProto.FLOAT, ["N", "seq"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", "seq"])
    model = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["tokens"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    model.ir_version = 8
    path = tmp_path / "dyn.onnx"
    onnx.save(model, str(path))
    return path


def test_missing_dynamic_dim_names_it_and_how_to_set_it(tmp_path: Path) -> None:
    path = _dynamic_onnx(tmp_path)
    e = catalog.resolve_model(str(path))  # listing without dims is fine
    assert e.inputs[0].shape == ("batch", "seq")  # the leading dynamic dim is the batch
    with pytest.raises(ShapeError, match=r"'seq'.*seq=SIZE") as err:
        catalog.resolve_model(str(path), dims={})
    assert err.value.field == "dims"  # the CLI shows it as --dim, the GUI as Dimensions
    ok = catalog.resolve_model(str(path), dims={"seq": 7})
    assert catalog.concrete_inputs(ok, 3, {"seq": 7}) == [("tokens", (3, 7), "float32")]


def test_wrong_shape_and_wrong_name_are_shape_errors() -> None:
    with pytest.raises(ShapeError, match="does not fit"):
        catalog.resolve_model("onnx-zoo:squeezenet", input_shapes={"data_0": "1x3x100"})
    with pytest.raises(ShapeError, match="no input named"):
        catalog.resolve_model("onnx-zoo:squeezenet", input_shapes={"image": "1x3x224x224"})
    with pytest.raises(ShapeError, match="fixed batch of 1"):
        catalog.concrete_inputs(catalog.resolve_model("onnx-zoo:squeezenet"), 8)
    with pytest.raises(ShapeError, match="at most 512"):
        catalog.resolve_model("builtin:bert-small", dims={"seq_len": 4096})


def test_unknown_refs_list_the_choices() -> None:
    with pytest.raises(ModelError, match="builtin:mlp-small"):
        catalog.resolve_model("builtin:nope")
    with pytest.raises(ModelError, match="onnx-zoo:squeezenet"):
        catalog.resolve_model("onnx-zoo:nope")


def test_torchscript_needs_explicit_shapes(tmp_path: Path) -> None:
    import torch

    module = builtin.build_module("mlp-tiny")
    path = tmp_path / "mlp.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # TorchScript is deprecated
        torch.jit.script(module).save(str(path))
    with pytest.raises(ShapeError, match="x=1x3x224x224") as err:
        catalog.resolve_model(str(path))
    assert err.value.field == "input_shapes"
    e = catalog.resolve_model(str(path), input_shapes={"x": "2x256:float32"})
    assert e.format == "torchscript" and e.inputs[0].shape == (2, 256)
    with pytest.raises(ShapeError, match="no input named"):
        catalog.resolve_model(str(path), input_shapes={"y": "2x256"})
    with pytest.raises(ShapeError, match="differs from the batch size 1"):
        catalog.concrete_inputs(e, 1, {}, {"x": "2x256:float32"})
    assert catalog.concrete_inputs(e, 2, {}, {"x": "2x256:float32"}) == [("x", (2, 256), "float32")]


def test_garbage_pt_file_is_a_model_error(tmp_path: Path) -> None:
    path = tmp_path / "garbage.pt"
    path.write_bytes(b"\x00\x01 not a zip archive")
    with pytest.raises(ModelError, match="not a readable TorchScript"):
        catalog.resolve_model(str(path), input_shapes={"x": "1x2"})


def test_torch_export_file_is_refused(tmp_path: Path) -> None:
    import torch

    module = builtin.build_module("mlp-tiny")
    batch = torch.export.Dim("batch")
    program = torch.export.export(module, (torch.randn(2, 256),), dynamic_shapes={"x": {0: batch}})
    path = tmp_path / "mlp.pt2"
    torch.export.save(program, str(path))
    # torch.export.load can run code from the file (tests/test_model_probe.py builds one)
    with pytest.raises(ModelError, match=r"does not open.*ONNX.*TorchScript") as err:
        catalog.resolve_model(str(path), dims={})
    assert err.value.field == "model"


def test_model_sha256_follows_file_content(tmp_path: Path) -> None:
    path = _dynamic_onnx(tmp_path)
    e = catalog.resolve_model(str(path))
    first = catalog.model_sha256(e)
    assert len(first) == 64
    b = catalog.resolve_model("builtin:mlp-small")
    assert catalog.model_sha256(b) == builtin.definition_hash("mlp-small")
    assert builtin.definition_hash("mlp-small") != builtin.definition_hash("mlp-tiny")


def test_definition_hash_covers_the_classes_a_model_reaches() -> None:
    sources = builtin.definition_sources("GPT")
    assert {"GPT", "GPTBlock", "SelfAttention", "init_transformer_weights"} <= set(sources)
    assert "ResNet" not in sources
    changed = builtin._nets_source().replace("class GPTBlock", "class GPTBlock  ", 1)
    assert builtin.definition_sources("GPT", changed) != sources
    assert builtin.definition_sources("MLP", changed) == builtin.definition_sources("MLP")


def test_synthesized_inputs_are_seeded_and_in_range() -> None:
    spec = [("ids", (2, 8), "int64"), ("attention_mask", (2, 8), "int64"), ("x", (3,), "float16")]
    a = inputs.synthesize(spec, seed=1, highs={"ids": 50})
    b = inputs.synthesize(spec, seed=1, highs={"ids": 50})
    c = inputs.synthesize(spec, seed=2, highs={"ids": 50})
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["ids"], c["ids"])
    assert a["ids"].min() >= 0 and a["ids"].max() < 50
    assert (a["attention_mask"] == 1).all() and a["x"].dtype == np.float16


def test_parse_shape_and_its_errors() -> None:
    assert inputs.parse_shape("1x3x224x224:fp16") == ((1, 3, 224, 224), "float16")
    assert inputs.parse_shape("8x128") == ((8, 128), "float32")
    with pytest.raises(ShapeError, match="Cannot read the shape"):
        inputs.parse_shape("1xAx3")
    with pytest.raises(ShapeError, match="at least 1"):
        inputs.parse_shape("0x3")
    with pytest.raises(ShapeError, match="Unknown dtype"):
        inputs.parse_shape("1x3:complex")
