"""Where training and encoding run: the device (CUDA, Apple MPS or the CPU), its autocast
precision, seeds, and how a batch of ink images is laid out for it.

``pick_device("auto")`` takes a CUDA GPU when there is one, else MPS, else the CPU; on a CPU with
native bf16 instructions (AVX512-BF16, AMX) autocast runs in bf16, elsewhere in fp32.
"""

from __future__ import annotations

import ctypes
import platform

import numpy as np
import torch

from backend.errors import ParameterError


def pick_device(preference: str = "auto") -> torch.device:
    if preference == "cuda" and not torch.cuda.is_available():
        raise ParameterError("device 'cuda' was asked for but no CUDA GPU is available")
    if preference == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise ParameterError("device 'mps' was asked for but Apple MPS is not available")
    if preference != "auto":
        return torch.device(preference)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 matrix instructions (AVX512-BF16, AMX), where bf16 autocast pays."""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_has_bf16():
        return torch.bfloat16
    return None


def keep_freed_memory() -> None:
    """Stop glibc from returning the large activation buffers to the OS after every step (and
    page-faulting them back in on the next): measured here, it cut the kernel time of a CPU
    training step from ~20 % to ~1 %. A no-op where glibc's mallopt is not available."""
    if platform.system() != "Linux":
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 1 << 30)  # M_MMAP_THRESHOLD: serve big blocks from the heap
        libc.mallopt(-1, 1 << 31)  # M_TRIM_THRESHOLD: keep freed heap memory
    except (OSError, AttributeError):
        pass


def set_seed(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def to_input(ink: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = ink.to(device, non_blocking=True).float()
    return x.contiguous(memory_format=torch.channels_last) if device.type != "mps" else x
