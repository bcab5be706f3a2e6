"""DeepLabV3 parity cases: default (output stride 8), stride 16, depth 3, atrous rates, separable ASPP, in_channels, aux head, tu- encoders.

SMP's head upsampling defaults to the encoder's effective output stride
(min(output_stride, 2 ** depth)); the output-stride-16 cases check that the
spec fills that default (DeepLabV3DecoderSpec.default_head_upsampling).
"""

CASES = [
    ("DeepLabV3", {"encoder_name": "resnet34"}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "resnet18", "encoder_output_stride": 16, "classes": 3, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "resnet18", "decoder_atrous_rates": (6, 12, 18), "decoder_aspp_separable": True, "decoder_aspp_dropout": 0.1, "decoder_channels": 64, "in_channels": 1}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "resnet18", "encoder_depth": 3, "in_channels": 4, "classes": 2, "decoder_channels": 32}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "resnet18", "encoder_depth": 4, "decoder_atrous_rates": (2, 4, 6), "activation": "softmax2d", "classes": 3}, (48, 64)),
    ("DeepLabV3", {"encoder_name": "tu-resnet18", "classes": 2, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("DeepLabV3", {"encoder_name": "tu-resnet18", "encoder_output_stride": 16, "decoder_channels": 64}, (64, 64)),
]
