"""Networks: the book's U-Net noise predictor (``unet``), its energy CNN (``energy_cnn``) and the
MNIST classifier behind :mod:`thermogen.metrics` (``mnist_classifier``)."""
