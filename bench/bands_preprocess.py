"""Throughput of ``python -m backend preprocess``: EIGENVAL files -> band data + images.

    python bench/bands_preprocess.py --data ../shared/data/heuslerene [--copies 40] [--windows 1,2,3]

The one real EIGENVAL of the shared data is copied ``--copies`` times under different names, then
preprocessed end to end by the CLI (all cores). Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data", required=True)
    ap.add_argument("--copies", type=int, default=40)
    ap.add_argument("--windows", default="1,2,3")
    args = ap.parse_args()
    raw = Path(args.data) / "raw"
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in"
        src.mkdir()
        for i in range(args.copies):
            shutil.copy(raw / "2D_Ac2HgGe_EIGENVAL", src / f"2D_M{i:04d}_EIGENVAL")
            shutil.copy(raw / "2D_Ac2HgGe_EF", src / f"2D_M{i:04d}_EF")
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-m", "backend", "preprocess", "--eigenvals", str(src), "--out",
                        str(Path(tmp) / "root"), "--windows", args.windows], cwd=PROJECT, check=True,
                       capture_output=True)
        wall = time.perf_counter() - t0
    n_windows = len(args.windows.split(","))
    print(json.dumps({"bench": "bands_preprocess", "machine": f"{platform.machine()}, {os.cpu_count()} cores",
                      "files": args.copies, "windows": n_windows, "wall_s": round(wall, 2),
                      "files_per_s": round(args.copies / wall, 2),
                      "note": "300 k-points x 60 bands per file; includes interpreter start-up"}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
