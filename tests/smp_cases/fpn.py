"""FPN parity cases: default, merge policies, widths, dropout, interpolation, depths, upsampling, tu- encoders."""

CASES = [
    ("FPN", {"encoder_name": "resnet34"}, (64, 64)),
    ("FPN", {"encoder_name": "resnet18", "decoder_merge_policy": "cat", "decoder_pyramid_channels": 128, "decoder_segmentation_channels": 64, "decoder_dropout": 0.5, "classes": 3}, (64, 64)),
    ("FPN", {"encoder_name": "resnet18", "decoder_interpolation": "bilinear", "in_channels": 1, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 96)),
    # With depth 4 / 3 SMP's mask is 2x / 4x the input at the default upsampling of 4.
    ("FPN", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32, "in_channels": 4}, (64, 64)),
    ("FPN", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_pyramid_channels": 64, "decoder_segmentation_channels": 32, "upsampling": 1, "decoder_dropout": 0.0}, (32, 32)),
    ("FPN", {"encoder_name": "tu-resnet18", "classes": 2, "upsampling": 2, "activation": "sigmoid", "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("FPN", {"encoder_name": "tu-convnext_atto", "decoder_merge_policy": "cat", "decoder_segmentation_channels": 64}, (64, 64)),
]
