"""MAnet parity cases: default, depths, PAB width, norms, interpolation, in_channels, aux head, tu- encoders."""

CASES = [
    ("MAnet", {"encoder_name": "resnet34"}, (64, 64)),
    ("MAnet", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (64, 32, 16), "decoder_pab_channels": 32, "classes": 3}, (64, 64)),
    ("MAnet", {"encoder_name": "resnet18", "encoder_depth": 1, "decoder_channels": (16,), "in_channels": 1}, (32, 32)),
    ("MAnet", {"encoder_name": "resnet18", "decoder_use_norm": {"type": "instancenorm", "affine": True}, "decoder_interpolation": "bilinear", "in_channels": 4, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 96)),
    ("MAnet", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_channels": (128, 64, 32, 16), "decoder_use_norm": False}, (64, 64)),
    ("MAnet", {"encoder_name": "tu-resnet18", "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    # Transformer-style (stride-4) encoder: the stage of the missing stride-2 skip is a plain block.
    ("MAnet", {"encoder_name": "tu-convnext_atto", "encoder_depth": 4, "decoder_channels": (128, 64, 32, 16)}, (64, 64)),
]
