"""Child entry point: ``python -m bench.measure SPEC OUT`` runs one job, writes its figures.

SPEC is a JSON file ``{"target": "module:function", "params": {...}}``; OUT receives
``{"figures": {...}, "notes": [...]}`` or ``{"error": "...", "notes": [...]}``. The parent
(:func:`bench.harness.run_job`) owns the timeout and kills this process group on expiry.
"""

from __future__ import annotations

import faulthandler
import importlib
import json
import sys
import traceback
from pathlib import Path
from typing import Any

from bench.harness import partial_figures, set_output, take_notes, write_atomically


def main(spec_path: str, out_path: str) -> int:
    spec = json.loads(Path(spec_path).read_text())
    set_output(Path(out_path))
    # A hang is killed by the parent; the stacks dumped just before say where it hung.
    faulthandler.dump_traceback_later(spec["dump_after"])
    result: dict[str, Any]
    module_name, _, function_name = spec["target"].partition(":")
    try:
        function = getattr(importlib.import_module(module_name), function_name)
        figures = function(**spec["params"])
        result = {"figures": {str(k): float(v) for k, v in figures.items()}}
    except Exception as error:
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"[:300]}
        result["figures"] = partial_figures()
    result["notes"] = take_notes()
    faulthandler.cancel_dump_traceback_later()
    write_atomically(Path(out_path), json.dumps(result))
    sys.stdout.flush()
    return 1 if "error" in result else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:3]))
