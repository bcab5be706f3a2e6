"""Linknet parity cases: default, depths, norms, in_channels, aux head, tu- encoders."""

CASES = [
    ("Linknet", {"encoder_name": "resnet34"}, (64, 64)),
    ("Linknet", {"encoder_name": "resnet18", "encoder_depth": 3, "classes": 3, "in_channels": 1}, (64, 64)),
    ("Linknet", {"encoder_name": "resnet18", "encoder_depth": 1}, (32, 32)),
    ("Linknet", {"encoder_name": "resnet18", "decoder_use_norm": False, "in_channels": 4, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 96)),
    ("Linknet", {"encoder_name": "resnet18", "decoder_use_norm": {"type": "instancenorm", "affine": True}, "classes": 2, "activation": "softmax2d"}, (64, 64)),
    ("Linknet", {"encoder_name": "tu-resnet18", "encoder_depth": 4, "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    # Transformer-style (stride-4) encoder: the stage of the missing stride-2 skip keeps its width.
    ("Linknet", {"encoder_name": "tu-convnext_atto"}, (64, 64)),
    ("Linknet", {"encoder_name": "tu-convnext_atto", "encoder_depth": 2}, (32, 32)),
]
