#!/usr/bin/env python3
"""Reads a run's TensorBoard folder with TensorBoard's own reader (EventAccumulator) and
prints what it holds as JSON: {"scalars": {tag: [[step, value, wall_time], ...]},
"texts": {tag: [[step, text], ...]}}. netaug's tests compare this with the run's
metrics.jsonl and steps.jsonl.

    python tools/tb_read.py RUN/tb
"""
import argparse
import json
import sys

from tensorboard.backend.event_processing.event_accumulator import (
    EventAccumulator,
    SCALARS,
    TENSORS,
)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", help="a folder of events.out.tfevents.* files")
    args = parser.parse_args()
    # size_guidance 0: keep every event (the default samples 10,000 scalars per tag).
    acc = EventAccumulator(args.folder, size_guidance={SCALARS: 0, TENSORS: 0})
    acc.Reload()
    tags = acc.Tags()
    out = {"scalars": {}, "texts": {}}
    for tag in tags["scalars"]:
        out["scalars"][tag] = [[e.step, e.value, e.wall_time] for e in acc.Scalars(tag)]
    for tag in tags["tensors"]:
        texts = []
        for e in acc.Tensors(tag):
            values = e.tensor_proto.string_val
            texts.append([e.step, values[0].decode() if values else ""])
        out["texts"][tag] = texts
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
