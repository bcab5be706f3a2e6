"""UnetPlusPlus parity cases: default, shallow depths, attention, norms, in_channels, aux head, tu- encoders."""

CASES = [
    ("UnetPlusPlus", {"encoder_name": "resnet34"}, (64, 64)),
    ("UnetPlusPlus", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (64, 32, 16), "classes": 3, "in_channels": 1}, (64, 64)),
    ("UnetPlusPlus", {"encoder_name": "resnet18", "encoder_depth": 2, "decoder_channels": (32, 16), "decoder_use_norm": False}, (32, 32)),
    ("UnetPlusPlus", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_channels": (64, 32, 32, 16), "decoder_attention_type": "scse", "in_channels": 4, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("UnetPlusPlus", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": (64, 32, 16), "decoder_use_norm": {"type": "instancenorm", "affine": True}, "decoder_interpolation": "bilinear", "classes": 2}, (64, 32)),
    ("UnetPlusPlus", {"encoder_name": "tu-resnet18", "encoder_depth": 4, "decoder_channels": (64, 32, 16, 16), "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    # Transformer-style (stride-4) encoder: the nodes of the missing stride-2 level are empty.
    ("UnetPlusPlus", {"encoder_name": "tu-convnext_atto", "decoder_channels": (64, 32, 32, 16, 16)}, (64, 64)),
    ("UnetPlusPlus", {"encoder_name": "tu-convnext_atto", "encoder_depth": 2, "decoder_channels": (32, 16), "decoder_attention_type": "scse"}, (32, 32)),
]
