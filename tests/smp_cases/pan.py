"""PAN parity cases: default (output stride 16), stride 32, depths 3 and 4, interpolation modes, in_channels, aux head, tu- encoders (CNN and stride-4 transformer).

The FPA block needs the deepest feature map to be at least 8x8, so inputs
are 8 x the encoder's effective output stride.
"""

CASES = [
    ("PAN", {"encoder_name": "resnet34"}, (128, 128)),
    ("PAN", {"encoder_name": "resnet18", "encoder_output_stride": 32, "decoder_channels": 16, "classes": 3}, (256, 256)),
    ("PAN", {"encoder_name": "resnet18", "encoder_depth": 3, "in_channels": 1, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("PAN", {"encoder_name": "resnet18", "encoder_depth": 4, "in_channels": 4, "classes": 2, "decoder_interpolation": "nearest"}, (128, 128)),
    ("PAN", {"encoder_name": "resnet18", "upscale_mode": "bicubic", "decoder_channels": 64}, (128, 192)),
    ("PAN", {"encoder_name": "tu-resnet18", "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (128, 128)),
    ("PAN", {"encoder_name": "tu-convnext_atto", "decoder_channels": 16}, (128, 128)),
]
