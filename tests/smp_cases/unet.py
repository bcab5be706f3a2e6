"""Unet parity cases: default, shallow, attention, norms, in_channels, aux head, odd sizes."""

CASES = [
    ("Unet", {"encoder_name": "resnet34"}, (64, 64)),
    ("Unet", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (64, 32, 16), "classes": 3}, (64, 64)),
    ("Unet", {"encoder_name": "resnet18", "decoder_attention_type": "scse", "in_channels": 1, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("Unet", {"encoder_name": "resnet18", "decoder_use_norm": {"type": "instancenorm", "affine": True}, "decoder_interpolation": "bilinear", "in_channels": 4, "classes": 2}, (70, 96)),  # instancenorm: deepest map at least 2x2
    ("Unet", {"encoder_name": "resnet50", "encoder_depth": 4, "decoder_channels": (128, 64, 32, 16), "decoder_use_norm": False}, (64, 64)),
    ("Unet", {"encoder_name": "tu-resnet18", "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("Unet", {"encoder_name": "tu-convnext_atto", "encoder_depth": 4, "decoder_channels": (128, 64, 32, 16)}, (64, 64)),
]
