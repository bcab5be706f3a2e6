"""PSPNet parity cases: default (depth 3), depth 4 and 5, norms, deprecated alias, in_channels, aux head, tu- encoders."""

CASES = [
    ("PSPNet", {"encoder_name": "resnet34"}, (64, 64)),
    ("PSPNet", {"encoder_name": "resnet18", "encoder_depth": 5, "psp_out_channels": 128, "psp_dropout": 0.1, "classes": 3}, (64, 64)),
    ("PSPNet", {"encoder_name": "resnet18", "in_channels": 1, "decoder_use_norm": False, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("PSPNet", {"encoder_name": "resnet18", "in_channels": 4, "classes": 2, "decoder_use_norm": {"type": "instancenorm", "affine": True}, "psp_out_channels": 64}, (64, 64)),
    ("PSPNet", {"encoder_name": "resnet18", "encoder_depth": 4, "psp_use_batchnorm": False, "upsampling": 16, "activation": "sigmoid"}, (64, 64)),
    ("PSPNet", {"encoder_name": "tu-resnet18", "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("PSPNet", {"encoder_name": "tu-convnext_atto", "encoder_depth": 4, "psp_out_channels": 64}, (64, 64)),
]
