"""One line describing where a benchmark ran (imported by the torch benchmarks, run as scripts from here)."""

from __future__ import annotations

import os
import platform


def describe_torch_machine(device: str = "cpu") -> str:
    """Architecture, cores, Python, torch and its threads, the GPU if any, and the current load average."""
    import torch

    gpu = f", {torch.cuda.get_device_name()}" if device.startswith("cuda") else ", CPU only"
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, Python {platform.python_version()}, "
            f"torch {torch.__version__} ({torch.get_num_threads()} threads){gpu}, load average "
            f"{os.getloadavg()[0]:.2f}")
