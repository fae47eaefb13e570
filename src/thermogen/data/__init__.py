"""Datasets: MNIST from the original IDX files, and folders of images."""

from thermogen.data.image_folder import ImageFolder
from thermogen.data.mnist import (
    MNIST,
    MNIST_ENV_VAR,
    MNIST_FILES,
    MNIST_MD5,
    MNIST_MIRRORS,
    download_mnist,
    load_mnist,
    read_idx_images,
    read_idx_labels,
    resolve_mnist_dir,
)

__all__ = [
    "MNIST",
    "MNIST_ENV_VAR",
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "ImageFolder",
    "download_mnist",
    "load_mnist",
    "read_idx_images",
    "read_idx_labels",
    "resolve_mnist_dir",
]
