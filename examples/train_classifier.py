"""Train the MNIST classifier of the evaluation kit (``thermogen.mnist``) and save its folder.

This is how the classifier shipped in ``src/thermogen/mnist/weights`` was made::

    python examples/train_classifier.py --data-dir /path/to/mnist --epochs 3 --threads 2 \\
        --out src/thermogen/mnist/weights

The folder gets ``config.json`` + ``model.safetensors`` (``save_classifier``);
the model card ``README.md`` beside them is written by hand from the printed figures.
"""

from __future__ import annotations

import argparse
import time

import torch

from thermogen.mnist import save_classifier, train_classifier


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=None, help="folder with the four MNIST IDX .gz files (default: download)")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--out", default="mnist-classifier", help="folder to write (replaced atomically)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    start = time.perf_counter()
    model, test_accuracy = train_classifier(
        args.data_dir, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, log=print
    )
    save_classifier(model, args.out)
    minutes = (time.perf_counter() - start) / 60
    print(f"test accuracy {test_accuracy:.4f} ({test_accuracy * 10000:.0f}/10000), {minutes:.1f} min; wrote {args.out}")


if __name__ == "__main__":
    main()
