"""Re-store a pipeline's replay buffer compactly (float16 or uint8), keeping its model card.

    python examples/compact_buffer.py src/thermogen/pretrained/ebm-mnist --storage uint8

The buffer keeps its capacity, order, count and pointer; each sample is rounded to the
new storage (uint8: the 256 levels q / 127.5 - 1 of [-1, 1]). The card gets a line saying so; the
other components' files are left as they are.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

import torch

from thermogen.buffers import ReplayBuffer
from thermogen.pipelines.ebm import EBMPipeline

NOTE_START = "\n\nThe replay buffer is stored as "


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline", type=Path, help="EBM pipeline folder")
    parser.add_argument("--storage", choices=("float16", "uint8"), default="uint8")
    args = parser.parse_args()

    card = (args.pipeline / "README.md").read_text(encoding="utf-8")
    card = card.split(NOTE_START)[0]  # the note of an earlier run is replaced
    pipe = EBMPipeline.from_pretrained(args.pipeline)
    if pipe.buffer is None:
        raise SystemExit(f"{args.pipeline} has no replay buffer")
    old = pipe.buffer
    config = {k: v for k, v in old.config.items() if not k.startswith("_")}
    compact = ReplayBuffer(**{**config, "storage": args.storage})
    state = old.state_tensors()
    samples = old.stored_samples()  # decoded float32, whatever the current storage
    if args.storage == "uint8":
        state["samples"] = torch.round((samples.clamp(-1.0, 1.0) + 1.0) * 127.5).to(torch.uint8)
    else:
        state["samples"] = samples.half()
    compact.load_state_tensors(state)
    largest = float((compact.stored_samples() - samples).abs().max())
    with tempfile.TemporaryDirectory() as scratch:  # only the buffer is written: the other components stay as stored
        written = Path(scratch) / "buffer"
        written.mkdir()
        compact.write_to(written)
        shutil.rmtree(args.pipeline / "buffer")
        shutil.copytree(written, args.pipeline / "buffer")
    note = (
        f"{NOTE_START}{args.storage} ({len(compact)} samples; largest change "
        f"from the float32 training buffer {largest:.4f}).\n"
    )
    (args.pipeline / "README.md").write_text(card.rstrip("\n") + note, encoding="utf-8")
    print(f"{args.pipeline}: buffer stored as {args.storage}, largest change {largest:.4f}")


if __name__ == "__main__":
    main()
