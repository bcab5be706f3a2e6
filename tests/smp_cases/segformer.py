"""Segformer parity cases: default, shallow, channels, in_channels, aux head, tu- CNN and stride-4 encoders."""

CASES = [
    ("Segformer", {"encoder_name": "resnet34"}, (64, 64)),
    ("Segformer", {"encoder_name": "resnet18", "encoder_depth": 3, "decoder_segmentation_channels": 64, "classes": 3}, (64, 64)),
    ("Segformer", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_segmentation_channels": 32, "in_channels": 1, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (96, 64)),
    ("Segformer", {"encoder_name": "tu-resnet18", "in_channels": 4, "classes": 2, "activation": "softmax2d", "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("Segformer", {"encoder_name": "tu-convnext_atto", "decoder_segmentation_channels": 128, "classes": 5}, (64, 64)),
    ("Segformer", {"encoder_name": "tu-convnext_atto", "encoder_depth": 3, "decoder_segmentation_channels": 64, "upsampling": 2}, (64, 64)),
]
