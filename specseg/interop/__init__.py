"""Interoperability with other libraries (segmentation_models_pytorch)."""
