"""Writes tests/coco_expected.json: pycocotools' 12 numbers on the fixture that
tests/coco.rs writes. Run once, with pycocotools from PyPI:
    NETAUG_DETEVAL_FIXTURES=/tmp/f cargo test -p netaug-deteval --test coco
    python3 crates/deteval/tests/pycocotools_expected.py /tmp/f
"""
import json
import os
import sys

from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

d = sys.argv[1]
gt = COCO(os.path.join(d, "gt.json"))
dt = gt.loadRes(os.path.join(d, "dt.json"))
e = COCOeval(gt, dt, "bbox")
e.evaluate()
e.accumulate()
e.summarize()
names = ["AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl"]
out = {n: float(v) for n, v in zip(names, e.stats)}
here = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(here, "coco_expected.json"), "w") as f:
    json.dump(out, f, indent=2)
    f.write("\n")
print(out)
