"""UPerNet parity cases: default, shallow, norms, in_channels, aux head, tu- CNN and stride-4 encoders.

SMP 0.6 has no groupnorm, and its layernorm normalises over the width
instead of the channels (fails on the 1x1 pooled map), so neither can be compared here.
"""

CASES = [
    ("UPerNet", {"encoder_name": "resnet34"}, (64, 64)),
    ("UPerNet", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_channels": 64, "classes": 3}, (64, 64)),
    ("UPerNet", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_channels": 128, "decoder_use_norm": {"type": "batchnorm", "eps": 1e-3, "momentum": 0.05}, "in_channels": 1, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("UPerNet", {"encoder_name": "resnet18", "decoder_channels": 32, "decoder_use_norm": "identity", "activation": "softmax2d", "classes": 2}, (96, 64)),
    ("UPerNet", {"encoder_name": "tu-resnet18", "decoder_channels": 64, "decoder_use_norm": False, "in_channels": 4, "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("UPerNet", {"encoder_name": "tu-convnext_atto", "decoder_channels": 64, "classes": 5}, (64, 64)),
    ("UPerNet", {"encoder_name": "tu-convnext_atto", "encoder_depth": 3, "decoder_channels": 32, "upsampling": 2}, (64, 64)),
]
