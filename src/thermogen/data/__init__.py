"""Datasets: MNIST from the original IDX files, folders of images, and the training sets built from them."""

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
from thermogen.data.training_sets import SignedRangeImages, folder_training_set, mnist_training_set

__all__ = [
    "MNIST",
    "MNIST_ENV_VAR",
    "MNIST_FILES",
    "MNIST_MD5",
    "MNIST_MIRRORS",
    "ImageFolder",
    "SignedRangeImages",
    "download_mnist",
    "folder_training_set",
    "load_mnist",
    "mnist_training_set",
    "read_idx_images",
    "read_idx_labels",
    "resolve_mnist_dir",
]
