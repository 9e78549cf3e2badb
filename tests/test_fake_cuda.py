"""Every adapter on a CUDA device that is not there: device mixing is caught on a CPU-only machine.

torch's ``FakeTensorMode`` knows which device each tensor is on, and raises
``FakeTensorDeviceMismatchError`` where a kernel would meet a CUDA and a CPU tensor; but a fake tensor
has no values, so a run on fake tensors alone stops at the first data-dependent op (``nonzero``,
NMS, ``.item()``), which every detector reaches inside its forward. Here each CUDA tensor is a real
CPU tensor that says it is on ``cuda:0`` (`OnCuda`), and `VirtualCuda` runs every op twice: once on
fake tensors, for FakeTensor's device rules (which mixes raise, which device a result is on), and
once on the values. So a run goes all the way, as on a GPU: ``load`` (``.to("cuda")``), preprocess,
forward, postprocess and the Explain capture; ``.cpu()`` and ``.item()`` copy to the host as on a
GPU, and ``.numpy()`` of a CUDA tensor fails as it does there.

What it cannot see: a kernel that exists on the CPU only (each op runs the CPU kernel on the
values), CUDA-only code paths in the libraries (they see ``torch.cuda.is_available()`` False), and
timing. Runs are fp32: autocast needs a real CUDA device.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from torch._subclasses.fake_tensor import (
    DataDependentOutputException,
    DynamicOutputShapeException,
    FakeTensor,
    FakeTensorDeviceMismatchError,
    FakeTensorMode,
    UnsupportedOperatorException,
    unset_fake_temporarily,
)
from torch.overrides import TorchFunctionMode
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten, tree_map, tree_unflatten

from playground.bench.fixtures import prompt_params
from playground.core.registry import REGISTRY
from playground.core.videos import ObjectPrompt, VideoPrompt

CUDA = torch.device("cuda", 0)
"""Where the virtual tensors are."""
GPU = torch.device("cuda")
"""The device an adapter is given, as `pick_device` gives it."""
CPU = torch.device("cpu")
NO_VALUES = (DataDependentOutputException, DynamicOutputShapeException, UnsupportedOperatorException)
"""What a fake run raises where an op's result depends on values: the device comes from the inputs."""

pytestmark = pytest.mark.usefixtures("fast_cpu")


class OnCuda(torch.Tensor):
    """A tensor on the virtual CUDA device: ``host`` holds its values, on the CPU."""

    host: torch.Tensor

    @staticmethod
    def __new__(cls, host: torch.Tensor) -> OnCuda:
        tensor = torch.Tensor._make_wrapper_subclass(
            cls, host.shape, strides=host.stride(), storage_offset=host.storage_offset(), dtype=host.dtype, device=CUDA
        )
        tensor.host = host
        return tensor

    @classmethod
    def __torch_dispatch__(cls, func, types, args=(), kwargs=None):
        raise RuntimeError(f"{func} on a virtual CUDA tensor outside virtual_cuda()")

    def tolist(self) -> list:
        return self.cpu().tolist()  # a host copy, as on a GPU

    def numpy(self, *, force: bool = False) -> np.ndarray:
        raise TypeError(f"can't convert {self.device} device type tensor to numpy. Use Tensor.cpu() first.")

    def __repr__(self) -> str:
        return f"OnCuda({self.host!r})"


class VirtualCuda(TorchDispatchMode):
    """Runs each op that touches the virtual CUDA device on fake tensors (devices) and on the values."""

    def __init__(self, fake_mode: FakeTensorMode) -> None:
        super().__init__()
        self.fake_mode = fake_mode

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        flat, spec = tree_flatten((args, kwargs or {}))
        if not any(isinstance(x, OnCuda) or (isinstance(x, torch.device) and x.type != "cpu") for x in flat):
            with unset_fake_temporarily():
                return func(*args, **(kwargs or {}))
        fakes = [self._fake(x) if isinstance(x, torch.Tensor) else x for x in flat]
        try:  # FakeTensor's device rules: raises FakeTensorDeviceMismatchError where devices mix
            fake_args, fake_kwargs = tree_unflatten(fakes, spec)
            fake_results = tree_flatten(func(*fake_args, **fake_kwargs))[0]
            devices = [t.device for t in fake_results if isinstance(t, torch.Tensor)]
        except NO_VALUES:
            devices = None
            common, _ = FakeTensor._find_common_device(func, [x for x in fakes if isinstance(x, torch.Tensor)])
        hosts = [x.host if isinstance(x, OnCuda) else CPU if isinstance(x, torch.device) else x for x in flat]
        host_args, host_kwargs = tree_unflatten(hosts, spec)
        with unset_fake_temporarily():
            out = func(*host_args, **host_kwargs)
        results, out_spec = tree_flatten(out)
        next_device = iter(devices) if devices is not None else None
        wrapped = []
        for result in results:
            if not isinstance(result, torch.Tensor):
                wrapped.append(result)
                continue
            device = next(next_device) if next_device is not None else common
            same = next((x for x, host in zip(flat, hosts) if host is result), None)  # an in-place op's own input
            if same is not None and same.device == device:
                wrapped.append(same)
            elif device.type == "cpu":
                wrapped.append(result)
            else:
                with torch.inference_mode(result.is_inference()):  # a view of a weight is no inference tensor
                    wrapped.append(OnCuda(result))
        return tree_unflatten(wrapped, out_spec)

    def _fake(self, tensor: torch.Tensor) -> FakeTensor:
        """A fake stand-in of ``tensor`` (its shape, strides and device), no values."""
        host = tensor.host if isinstance(tensor, OnCuda) else tensor
        size = max(host.untyped_storage().nbytes() // host.element_size(), 1) if host.layout == torch.strided else 1
        meta = torch.empty(size, dtype=host.dtype, device="meta")
        if host.layout == torch.strided:
            meta = meta.as_strided(host.shape, host.stride(), host.storage_offset())
        return FakeTensor(self.fake_mode, meta, tensor.device)


class ValuesOfElements(TorchFunctionMode):
    """``torch.tensor([a, b])`` of CUDA scalars reads their values, as on a GPU: here it would run the
    CUDA kernel itself (it stores the elements with Python dispatch turned off), so it reads ``host``."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        if func in (torch.tensor, torch.as_tensor) and args:
            args = (tree_map(lambda x: x.host if isinstance(x, OnCuda) else x, args[0]), *args[1:])
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def virtual_cuda(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[torch.device]]:
    """Inside, ``cuda`` names the virtual device; yields the devices `torch.cuda.synchronize` was asked
    to wait for. The fake mode underneath keeps torch from initialising CUDA for a ``device="cuda"``
    factory; modules moved with ``.to`` get new parameters (the old ones cannot hold a CUDA tensor)."""
    synced: list[torch.device] = []
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # the same run on a machine with a GPU
    monkeypatch.setattr(torch.cuda, "synchronize", lambda device=None: synced.append(device))
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (40 << 30, 80 << 30))
    overwrite = torch.__future__.get_overwrite_module_params_on_conversion()
    torch.__future__.set_overwrite_module_params_on_conversion(True)
    fake_mode = FakeTensorMode()
    try:
        with fake_mode, VirtualCuda(fake_mode), ValuesOfElements():
            yield synced
    finally:
        torch.__future__.set_overwrite_module_params_on_conversion(overwrite)


def test_the_virtual_device_catches_what_a_gpu_would_refuse(monkeypatch) -> None:
    with virtual_cuda(monkeypatch):
        boxes = torch.rand(3, 4, device="cuda")
        assert boxes.device == CUDA and (boxes * torch.tensor(2.0)).device == CUDA  # a CPU scalar is fine
        assert boxes[torch.tensor([0, 2])].device == CUDA  # so are CPU indices
        assert (boxes > 0.5).nonzero().device == CUDA and isinstance(boxes.sum().item(), float)
        assert torch.tensor([boxes[0, 0], boxes[1, 1]], device="cuda").device == CUDA
        np.testing.assert_array_equal(boxes.cpu().numpy(), boxes.host.numpy())
        with pytest.raises(FakeTensorDeviceMismatchError):
            boxes * torch.tensor([640, 480] * 2)
        with pytest.raises(FakeTensorDeviceMismatchError):
            boxes.index_select(0, torch.tensor([0]))
        with pytest.raises(TypeError, match="cuda:0 device type tensor to numpy"):
            boxes.numpy()


CACHED_COMPUTE = {"sam", "sam2", "sam3", "grounding-dino", "owlv2"}
"""Models whose cache times a computation ("image encoded in X s", "Grounding DINO ran in X s")."""
SAM_MODES = {
    "boxes": {"boxes": ((10.0, 10.0, 90.0, 70.0),)},
    "everything": {"everything": True, "points_per_side": 4, "pred_iou_thresh": 0.0, "stability_score_thresh": 0.0},
}


def image_runs() -> list[tuple[str, str, str]]:
    """(key, task, mode): every task of every model with an adapter in models/, and SAM's other modes."""
    runs = [
        (spec.key, task, "default")
        for spec in REGISTRY.values()
        if not spec.components and spec.adapter.startswith("models.") and "video" not in spec.tasks
        for task in spec.tasks
    ]
    return [*runs, ("sam", "prompt", "boxes"), ("sam", "prompt", "everything"), ("sam2", "prompt", "boxes")]


def run_params(key: str, task: str, mode: str, image: np.ndarray) -> dict:
    if mode != "default":
        return SAM_MODES[mode]
    return {"box": (10, 10, 90, 70)} if (key, task) == ("sam3", "prompt") else prompt_params(task, image)


def load_on_virtual_cuda(key: str):
    spec = REGISTRY[key]
    adapter = spec.load_class()(spec, "tiny", GPU, None, "fp32")
    torch.manual_seed(0)
    adapter.load()
    return adapter


@pytest.mark.parametrize(("key", "task", "mode"), image_runs())
def test_every_adapter_runs_on_cuda_without_mixing_devices(key, task, mode, image, monkeypatch) -> None:
    with virtual_cuda(monkeypatch) as synced:
        adapter = load_on_virtual_cuda(key)
        weights = [*adapter.model.parameters(), *adapter.model.buffers()]
        assert all(tensor.device == CUDA for tensor in weights)
        assert all(patch.runs_on("cuda") for patch in adapter.patches), adapter.patches
        prediction = adapter.predict(image, task, **run_params(key, task, mode, image))
    assert prediction.device == "cuda" and prediction.image_size == image.shape[:2]
    assert synced.count(GPU) >= 2  # the forward's clock waited for the device at both ends
    if key in CACHED_COMPUTE:  # and the cached encoding's clock ("image encoded in X s")
        assert synced.count(GPU) >= 3 or prediction.meta.get("embedding_cached"), synced
    assert adapter.explainer is None or prediction.explain, f"{key}: nothing recorded for Explain"


def test_no_cpu_only_layer_is_swapped_in_on_cuda_or_mps() -> None:
    """The faster layers measured on CPUs only stay out of a CUDA or MPS build; batch-norm folding,
    which does strictly less work anywhere, stays in."""
    from models.layers.batch_norm_folding import FOLDED

    for key in ("fcn", "mask-rcnn", "grounding-dino", "mask2former", "sam", "sam3"):
        spec = REGISTRY[key]
        builds = {}
        for device in (CPU, GPU, torch.device("mps")):
            adapter = builds[device.type] = spec.load_class()(spec, "tiny", device)
            adapter._prepare(adapter.build().eval())  # built on the CPU: only the choice of layers is tested
        cpu_only = [patch.replaced for patch in builds["cpu"].patches if patch.devices == ("cpu",)]
        assert cpu_only or key == "fcn", key
        for device in ("cuda", "mps"):
            assert not any(patch.devices == ("cpu",) for patch in builds[device].patches), (key, device)
            folded = [patch.count for patch in builds[device].patches if patch.replaced == FOLDED.replaced]
            assert folded == [p.count for p in builds["cpu"].patches if p.replaced == FOLDED.replaced], key


class Frames:
    """A 3-frame clip in memory (the `FrameSource` protocol)."""

    fps = 4.0

    def __init__(self, image: np.ndarray) -> None:
        self.height, self.width = image.shape[:2]
        self.frames = [np.roll(image, 4 * index, axis=1) for index in range(3)]

    def __len__(self) -> int:
        return len(self.frames)

    def frame(self, index: int) -> np.ndarray:
        return self.frames[index]


@pytest.mark.parametrize(
    ("key", "prompt"),
    [
        (
            "sam2-video",
            VideoPrompt(1, (ObjectPrompt(1, points=((60.0, 50.0, 1),)), ObjectPrompt(2, box=(5, 5, 60, 60)))),
        ),
        ("sam3-video", VideoPrompt(1, text="cat")),
    ],
)
def test_video_adapters_track_on_cuda_with_their_state_there(key, prompt, image, monkeypatch) -> None:
    with virtual_cuda(monkeypatch):
        adapter = load_on_virtual_cuda(key)
        state = adapter.open_session(Frames(image))
        assert state.session.inference_state_device == GPU  # it fits: it stays on the model's device
        frames = list(adapter.track(state, prompt))
        state.close()
    assert sorted(frame.index for frame in frames) == [0, 1, 2]
    assert all(frame.masks.shape[1:] == image.shape[:2] for frame in frames)


def test_video_state_leaves_a_gpu_only_when_it_does_not_fit(monkeypatch) -> None:
    from models.video.session import state_device

    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda device=None: (2 << 30, 16 << 30))
    assert state_device(GPU, 30, 1024) == GPU  # 30 frames of 1024 px: about 190 MB
    assert state_device(GPU, 3000, 1024) == CPU  # 19 GB
    assert state_device(CPU, 3000, 1024) == CPU
    assert state_device(torch.device("mps"), 3000, 1024) == torch.device("mps")


@pytest.mark.parametrize("key", ["fcn", "mask-rcnn", "detr", "maskformer", "sam", "grounding-dino"])
def test_the_bench_compares_a_cuda_build_with_the_cpu(key, image, monkeypatch) -> None:
    """`bench --device cuda`'s ``cpu_agreement``: a CUDA build (the library's kernels but batch-norm
    folding) against an fp32 library build of the same weights on the CPU, region inputs moved over."""
    from playground.bench.models import ReferenceResult

    spec = REGISTRY[key]
    torch.manual_seed(0)
    on_cpu = spec.load_class()(spec, "tiny", CPU, None, "fp32", library_kernels=True)
    on_cpu.load()
    params = run_params(key, spec.tasks[0], "default", image)
    expected = ReferenceResult(on_cpu, image, spec.tasks[0], params)
    with virtual_cuda(monkeypatch):
        on_gpu = spec.load_class()(spec, "tiny", GPU, None, "fp32")
        on_gpu.build()  # its processor and labels; the weights are the CPU build's
        on_gpu.adopt(on_cpu.model)
        agreement = expected.agreement(on_gpu, on_gpu.predict(image, spec.tasks[0], **params))
    assert agreement["pixels"] in (None, 1.0) and agreement["instances"] in (None, 1.0), agreement
    assert agreement["raw_rel_error"] < 1e-4, agreement
