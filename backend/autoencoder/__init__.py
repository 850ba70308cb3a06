"""Residual convolutional autoencoders that turn band-structure images into fingerprints.

- :mod:`.images`: training images (folders of PNGs, and ``import-plots`` from published plots)
- :mod:`.model`: the ResNet-18/50 encoder and its mirrored decoder
- :mod:`.noise`: the study's "localized noise" (random erasing with Gaussian noise)
- :mod:`.training`: one readable training loop, its config, and the outputs it writes
- :mod:`.encoding`: fingerprints, UMAP embeddings and the unencoded baseline
"""
