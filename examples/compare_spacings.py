"""FD / confident / class entropy of one sampler on a pipeline for several spacings and step counts.

    python examples/compare_spacings.py thermogen/ddim-mnist --sampler heun --spacings uniform,karras,log_snr \
        --steps 3,5,10 --n 300 --data-dir /path/to/mnist
"""

from __future__ import annotations

import argparse

import torch

from thermogen import registry
from thermogen.mnist import evaluate_images
from thermogen.pipelines.diffusion import DiffusionPipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("pipeline")
    parser.add_argument("--sampler", default="heun")
    parser.add_argument("--spacings", default="uniform,karras,log_snr")
    parser.add_argument("--steps", default="3,5,10")
    parser.add_argument("--n", type=int, default=300)
    parser.add_argument("--seed", type=int, default=2)
    parser.add_argument("--data-dir", default=None)
    args = parser.parse_args()
    pipe = DiffusionPipeline.from_pretrained(args.pipeline)
    print("| spacing | steps | FD | confident | class entropy |\n| --- | --- | --- | --- | --- |")
    for spacing in args.spacings.split(","):
        pipe.sampler = registry.get("samplers", args.sampler)(spacing=spacing)
        for steps in (int(s) for s in args.steps.split(",")):
            generator = torch.Generator().manual_seed(args.seed)
            images = pipe(batch_size=args.n, num_inference_steps=steps, generator=generator, output_type="tensor")
            m = evaluate_images(images.images.float(), data_dir=args.data_dir)
            print(f"| {spacing} | {steps} | {m['fd']:.2f} | {m['confident_fraction']:.3f} | {m['class_entropy']:.3f} |")


if __name__ == "__main__":
    main()
