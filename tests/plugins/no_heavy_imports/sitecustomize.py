"""Loaded by every Python process started with this folder on PYTHONPATH (the test's own and
each run's worker): importing torch, onnxruntime or Qt fails, so a test that passes here proves
the code it ran needs none of them."""

import sys

BLOCKED = ("torch", "onnxruntime", "PySide6", "pyqtgraph", "shiboken6")


class _Blocked:
    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        if name.split(".")[0] in BLOCKED:
            raise ImportError(f"{name} is blocked in this test process")
        return None


sys.meta_path.insert(0, _Blocked())
