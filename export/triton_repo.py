"""An NVIDIA Triton Inference Server model repository from a bundle (``gandapt-export --triton-repo DIR``).

Layout (Triton "Model Repository" docs)::

    DIR/gandapt_mapping/config.pbtxt        platform "onnxruntime_onnx", 1/model.onnx
    DIR/gandapt_synthesis/config.pbtxt      platform "onnxruntime_onnx", 1/model.onnx
    DIR/gandapt_synthesis_trt/config.pbtxt  platform "tensorrt_plan", 1/model.plan (bundle engine + 'tensorrt')
    DIR/gandapt_generate/config.pbtxt       platform "ensemble": (z, truncation_psi, domain) → img
    DIR/gandapt_encoder/config.pbtxt        platform "onnxruntime_onnx" (image → ws), when the bundle has encoder.onnx
    DIR/README.md                           how to start the server and call it

Configs are protobuf text (``inference.ModelConfig`` from Triton's ``model_config.proto``) written from
the manifest's IO spec. A graph whose every input and output leads with the dynamic batch axis gets
``max_batch_size`` with ``dynamic_batching {}`` and ``dims`` without the batch axis (Triton's batching
convention), so the domain vector is an ordinary batched input and the batcher mixes domains in one
batch. A batch-only tensor ([N]) becomes ``dims: [ 1 ]`` with ``reshape: { shape: [ ] }`` (Triton's
documented reshape idiom). Graphs with another leading axis (a fixed-batch ``grouped`` export, a scalar
input) get ``max_batch_size: 0`` and full dims, with -1 for the batch axis.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from gandapt.errors import GandaptError
from gandapt.export.engine import GRAPH_FILES, graph_spec, read_manifest
from gandapt.io import temp_beside

PLATFORMS = {"onnxruntime": "onnxruntime_onnx", "tensorrt": "tensorrt_plan"}
MAPPING, SYNTHESIS, ENSEMBLE, ENCODER = "gandapt_mapping", "gandapt_synthesis", "gandapt_generate", "gandapt_encoder"
TRITON_IMAGE = "nvcr.io/nvidia/tritonserver:<yy.mm>-py3"
_DTYPES = {"float32": "TYPE_FP32", "float16": "TYPE_FP16", "bfloat16": "TYPE_BF16", "float64": "TYPE_FP64",
           "int64": "TYPE_INT64", "int32": "TYPE_INT32", "int8": "TYPE_INT8", "uint8": "TYPE_UINT8",
           "bool": "TYPE_BOOL"}


def triton_dtype(dtype: str) -> str:
    """Triton ``DataType`` name for a numpy dtype name ('float32' → 'TYPE_FP32')."""
    key = {"fp32": "float32", "fp16": "float16", "float": "float32", "half": "float16"}.get(dtype, dtype)
    if key not in _DTYPES:
        raise GandaptError(f"dtype {dtype!r} has no Triton data type; use one of {', '.join(_DTYPES)}")
    return _DTYPES[key]


def _batched(spec: Dict[str, Any]) -> bool:
    return all(t["shape"] and t["shape"][0] == "N" for t in spec["inputs"] + spec["outputs"])


def _tensor(t: Dict[str, Any], batched: bool, reshape: bool = True) -> str:
    dims = [-1 if d == "N" else int(d) for d in (t["shape"][1:] if batched else t["shape"])]
    lines = [f'    name: "{t["name"]}"', f"    data_type: {triton_dtype(t['dtype'])}"]
    if dims:
        lines.append(f"    dims: [ {', '.join(map(str, dims))} ]")
    else:  # Triton needs non-empty dims: [N] (or a scalar) is served as [N, 1] and reshaped back
        lines += ["    dims: [ 1 ]"] + (["    reshape: { shape: [ ] }"] if reshape else [])
    return "  {\n" + "\n".join(lines) + "\n  }"


def _io_block(key: str, tensors: Sequence[Dict[str, Any]], batched: bool, reshape: bool = True) -> str:
    return f"{key} [\n" + ",\n".join(_tensor(t, batched, reshape) for t in tensors) + "\n]\n"


def model_config(name: str, platform: str, spec: Dict[str, Any], max_batch: int) -> str:
    """``config.pbtxt`` text for one ONNX or TensorRT model.

    Args:
        name: the model (= directory) name.
        platform: 'onnxruntime_onnx' or 'tensorrt_plan'.
        spec: IO spec ``{inputs, outputs}`` (manifest form: shapes with "N" for the batch axis).
        max_batch: Triton's max_batch_size when the graph is batchable.
    """
    batched = _batched(spec)
    head = f'name: "{name}"\nplatform: "{platform}"\nmax_batch_size: {max_batch if batched else 0}\n'
    text = head + _io_block("input", spec["inputs"], batched) + _io_block("output", spec["outputs"], batched)
    if batched:
        text += "dynamic_batching { }\n"  # defaults: batch whatever is queued, no added delay
    return text


def _chain(mapping: Dict[str, Any], synthesis: Dict[str, Any]) -> Tuple[str, str]:
    """(mapping output, synthesis input) carrying ws: same name, else same shape and dtype."""
    ws = mapping["outputs"][0]
    for t in synthesis["inputs"]:
        if t["name"] == ws["name"]:
            return ws["name"], t["name"]
    for t in synthesis["inputs"]:
        if t["shape"][1:] == ws["shape"][1:] and t["dtype"] == ws["dtype"]:
            return ws["name"], t["name"]
    raise GandaptError(f"no synthesis input takes the mapping output {ws['name']} {ws['shape']}; re-export the bundle")


def ensemble_config(mapping: Dict[str, Any], synthesis: Dict[str, Any], steps: Tuple[str, str], max_batch: int) -> str:
    """``config.pbtxt`` of the ensemble ``mapping → synthesis``: inputs z, truncation_psi, domain → img.

    Ensemble tensor names are the graphs' own IO names; ``input_map``/``output_map`` keys are the
    composing model's tensor names and values the ensemble's (Triton "Ensemble Models" docs). The
    ensemble declares API shapes only: a ``reshape`` stays in the composing model's config
    (reshape on ensemble tensors misbehaves: triton-inference-server/server#5943, #7355).
    """
    ws_out, ws_in = _chain(mapping, synthesis)
    inputs = list(mapping["inputs"]) + [t for t in synthesis["inputs"] if t["name"] != ws_in]
    names = [t["name"] for t in inputs]
    if len(set(names)) != len(names) or ws_out in names:
        raise GandaptError(f"mapping and synthesis share input names {names}; the ensemble needs distinct names")
    batched = _batched(mapping) and _batched(synthesis)
    text = (f'name: "{ENSEMBLE}"\nplatform: "ensemble"\nmax_batch_size: {max_batch if batched else 0}\n'
            + _io_block("input", inputs, batched, reshape=False)
            + _io_block("output", synthesis["outputs"], batched, reshape=False))

    def step(model, ins, outs):
        maps = [f'      input_map {{ key: "{k}" value: "{v}" }}' for k, v in ins]
        maps += [f'      output_map {{ key: "{k}" value: "{v}" }}' for k, v in outs]
        return f'    {{\n      model_name: "{model}"\n      model_version: -1\n' + "\n".join(maps) + "\n    }"

    m_step = step(steps[0], [(t["name"], t["name"]) for t in mapping["inputs"]], [(ws_out, ws_out)])
    s_step = step(steps[1], [(t["name"], ws_out if t["name"] == ws_in else t["name"]) for t in synthesis["inputs"]],
                  [(t["name"], t["name"]) for t in synthesis["outputs"]])
    return text + "ensemble_scheduling {\n  step [\n" + m_step + ",\n" + s_step + "\n  ]\n}\n"


def _place(src: Path, dst: Path, link: bool = True) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if not link:
            raise OSError
        os.link(src, dst)  # no copy of a large graph; the exporter replaces files, never edits them
    except OSError:
        shutil.copy2(src, dst)


def external_data_files(onnx_path: Path) -> List[str]:
    """Relative paths of the external-data files an ONNX graph references (torch.export writes ``*.onnx.data``)."""
    import onnx
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    model = onnx.load(str(onnx_path), load_external_data=False)
    tensors = list(model.graph.initializer) + [a.t for n in model.graph.node for a in n.attribute if a.HasField("t")]
    return sorted({ExternalDataInfo(t).location for t in tensors if uses_external_data(t)})


def _place_model(src: Path, version_dir: Path, fname: str) -> None:
    _place(src, version_dir / fname)
    if fname.endswith(".onnx"):  # the weights file keeps its name: the graph refers to it by location
        for rel in external_data_files(src):  # copied: onnx refuses hard-linked data ("hardlink attack")
            _place(src.parent / rel, version_dir / rel, link=False)


def _read_json(path: Path) -> Dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise GandaptError(f"cannot read {path}: {e}; rebuild the engine with gandapt-export --engine") from e


def _engine_spec(bundle: Path, manifest: Optional[Dict[str, Any]], graph: str) -> Optional[Dict[str, Any]]:
    """IO spec of the bundle's TensorRT plan for ``graph`` (from its .plan.json), or None."""
    entry = ((manifest or {}).get("engine") or {}).get(graph)
    if not entry or not (bundle / entry["file"]).is_file():
        return None
    meta = _read_json(bundle / entry["metadata"])
    return {"file": entry["file"], "inputs": meta["inputs"], "outputs": meta["outputs"],
            "max_batch": (entry.get("batch") or {}).get("max")}


def check_repo_dir(repo_dir: Union[str, Path], force: bool = False) -> None:
    """Refuse a repository path that is a file, or a non-empty folder without ``force`` (checked
    before an export starts, so the refusal does not come after minutes of work).

    Raises:
        GandaptError: either case.
    """
    repo = Path(repo_dir)
    if repo.exists() and not repo.is_dir():
        raise GandaptError(f"{repo} is a file; give a directory for the Triton model repository")
    if repo.exists() and any(repo.iterdir()) and not force:
        raise GandaptError(f"{repo} exists and is not empty; pass --force to replace gandapt's models in it")


def write_triton_repo(
    bundle_dir: os.PathLike,
    repo_dir: os.PathLike,
    platforms: Sequence[str] = ("onnxruntime",),
    max_batch: int = 8,
    force: bool = False,
) -> Path:
    """Write a Triton Inference Server model repository serving the bundle's mapping, synthesis and encoder.

    Args:
        bundle_dir: a bundle from ``gandapt-export`` (mapping.onnx, synthesis.onnx, manifest.json; an
            ``encoder.onnx`` becomes the standalone model ``gandapt_encoder``, outside the ensemble).
        repo_dir: the repository to create (``tritonserver --model-repository=repo_dir``).
        platforms: 'onnxruntime' (the ONNX graphs) and/or 'tensorrt' (the bundle's TensorRT engines,
            from ``gandapt-export --engine``). With 'tensorrt' the ensemble uses the engine; a graph
            without an engine (mapping, usually) is always served by onnxruntime.
        max_batch: ``max_batch_size`` of the batchable models (at most the engine profile's max).
        force: replace gandapt's models in an existing repository (other models are kept).

    Returns:
        ``repo_dir``.

    Raises:
        GandaptError: unknown platform, missing graph or engine, repository exists without force.
    """
    bundle, repo = Path(bundle_dir), Path(repo_dir)
    unknown = [p for p in platforms if p not in PLATFORMS]
    if unknown or not platforms:
        raise GandaptError(f"unknown Triton platform {unknown or platforms}; use {' and/or '.join(PLATFORMS)}")
    if max_batch < 1:
        raise GandaptError(f"max_batch must be >= 1, got {max_batch}")
    check_repo_dir(repo, force)
    manifest = read_manifest(bundle)
    graphs = [("mapping", MAPPING), ("synthesis", SYNTHESIS)]
    if _has_encoder(bundle, manifest):
        graphs.append(("encoder", ENCODER))
    specs = {g: graph_spec(bundle, g, manifest) for g, _ in graphs}

    models: Dict[str, Tuple[str, Dict[str, Any], Path, str]] = {}  # name → (platform, spec, source, file)
    chosen = {}
    for graph, name in graphs:
        engine = _engine_spec(bundle, manifest, graph) if "tensorrt" in platforms else None
        if engine is not None:
            if engine["max_batch"] and max_batch > engine["max_batch"]:
                raise GandaptError(f"max_batch {max_batch} exceeds the {graph} engine's profile max "
                                   f"{engine['max_batch']}; lower it or rebuild the engine with a larger max batch")
            models[name + "_trt"] = ("tensorrt_plan", engine, bundle / engine["file"], "model.plan")
            chosen[graph] = name + "_trt"
        elif graph == "synthesis" and "tensorrt" in platforms:
            raise GandaptError("the bundle has no TensorRT engine for synthesis; build one with gandapt-export "
                               "--engine on the GPU machine, or request the onnxruntime platform")
        if "onnxruntime" in platforms or graph not in chosen:
            models[name] = ("onnxruntime_onnx", specs[graph], bundle / specs[graph]["file"], "model.onnx")
            chosen.setdefault(graph, name)

    tmp = temp_beside(repo, "", directory=True)
    try:  # build beside the target, then move in: an interrupted export leaves no half repository
        for name, (platform, spec, src, fname) in models.items():
            _place_model(src, tmp / name / "1", fname)
            (tmp / name / "config.pbtxt").write_text(model_config(name, platform, spec, max_batch))
        steps = (chosen["mapping"], chosen["synthesis"])
        (tmp / ENSEMBLE / "1").mkdir(parents=True)  # Triton wants a version folder, even empty, for ensembles
        (tmp / ENSEMBLE / "config.pbtxt").write_text(
            ensemble_config(models[steps[0]][1], models[steps[1]][1], steps, max_batch))
        (tmp / "README.md").write_text(client_readme(models[steps[0]][1], models[steps[1]][1],
                                                     models[chosen["encoder"]][1] if "encoder" in chosen else None))
        repo.mkdir(exist_ok=True)
        if "encoder" not in chosen and (repo / ENCODER).is_dir():  # an earlier bundle's: it inverts into another W+
            shutil.rmtree(repo / ENCODER)
        for child in tmp.iterdir():
            target = repo / child.name
            if target.is_dir():
                shutil.rmtree(target)
            os.replace(child, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return repo


def _has_encoder(bundle: Path, manifest: Optional[Dict[str, Any]]) -> bool:
    """The bundle has an encoder graph: listed in the manifest, or (no manifest) ``encoder.onnx`` exists."""
    if manifest is not None:
        return "encoder" in (manifest.get("graphs") or {})
    return (bundle / GRAPH_FILES["encoder"]).is_file()


def client_readme(mapping: Dict[str, Any], synthesis: Dict[str, Any], encoder: Optional[Dict[str, Any]] = None) -> str:
    """README for the repository: start the official server and call the ensemble with tritonclient."""
    ws_out, ws_in = _chain(mapping, synthesis)
    batched = _batched(mapping) and _batched(synthesis)
    feeds: List[str] = []
    for t in list(mapping["inputs"]) + [t for t in synthesis["inputs"] if t["name"] != ws_in]:
        dims = ["n" if d == "N" else str(d) for d in t["shape"]]
        if len(dims) == (1 if batched else 0):
            dims.append("1")  # served as [n, 1] / [1] (reshape in config.pbtxt)
        shape, dt = ", ".join(dims) + ",", f"np.{t['dtype']}"
        value = {"z": f"rng.standard_normal(({shape})).astype({dt})",
                 "truncation_psi": f"np.full(({shape}), 0.7, {dt})"}.get(
            t["name"], f"np.zeros(({shape}), {dt})")
        note = "" if t["name"] in ("z", "truncation_psi") else "  # replace: one domain vector per sample"
        feeds.append(f'    ("{t["name"]}", {value}),{note}')
    out = synthesis["outputs"][0]["name"]
    camera = "" if encoder is None else (
        f"\n`{ENCODER}` ({encoder['inputs'][0]['name']} → {encoder['outputs'][0]['name']}) inverts camera crops "
        f"(RGB in [-1, 1], [n, 3, H, W]; crop as the bundle manifest's `graphs.encoder.crop` says) into the\n"
        f"`{ws_in}` input of `{SYNTHESIS}`.\n")
    return f"""# gandapt models for NVIDIA Triton Inference Server

Models: `{MAPPING}` (z → {ws_out}), `{SYNTHESIS}` ({ws_in}, domain → image) and the ensemble
`{ENSEMBLE}` that chains them. The domain is an ordinary batched input, so one batch may mix domains;
take its rows from the bundle's `domains.safetensors`. A `*_trt` model holds a TensorRT plan, which
runs only on the GPU architecture and TensorRT version it was built with: pick the server release
whose TensorRT matches the plan's `tensorrt_version` (see the bundle's `*.plan.json`).
{camera}
```
docker run --gpus all --rm -p8000:8000 -p8001:8001 -v $PWD/repo:/models \\
    {TRITON_IMAGE} tritonserver --model-repository=/models
```

```python
import numpy as np
import tritonclient.grpc as grpcclient
from tritonclient.utils import np_to_triton_dtype

n, rng = 2, np.random.default_rng(0)
feeds = [
{chr(10).join(feeds)}
]
client = grpcclient.InferenceServerClient("localhost:8001")
inputs = []
for name, value in feeds:
    inp = grpcclient.InferInput(name, list(value.shape), np_to_triton_dtype(value.dtype))
    inp.set_data_from_numpy(value)
    inputs.append(inp)
result = client.infer("{ENSEMBLE}", inputs, outputs=[grpcclient.InferRequestedOutput("{out}")])
img = result.as_numpy("{out}")  # [n, C, H, W] in [-1, 1]
```
"""
