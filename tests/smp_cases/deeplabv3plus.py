"""DeepLabV3+ parity cases: default (output stride 16), stride 8, depths 3 and 4, atrous rates, plain ASPP, in_channels, aux head, tu- encoders."""

CASES = [
    ("DeepLabV3Plus", {"encoder_name": "resnet34"}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "resnet18", "encoder_output_stride": 8, "classes": 3, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "resnet18", "encoder_depth": 3, "in_channels": 1, "decoder_aspp_separable": False, "decoder_atrous_rates": (6, 12, 18), "decoder_channels": 64}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "resnet18", "encoder_depth": 4, "in_channels": 4, "classes": 2, "decoder_aspp_dropout": 0.2, "decoder_channels": 32}, (64, 96)),
    ("DeepLabV3Plus", {"encoder_name": "resnet18", "encoder_depth": 4, "encoder_output_stride": 8, "decoder_channels": 32}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "tu-resnet18", "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "tu-resnet18", "encoder_output_stride": 8, "decoder_channels": 64}, (64, 64)),
    ("DeepLabV3Plus", {"encoder_name": "tu-convnext_atto", "decoder_channels": 64}, (64, 64)),
]
