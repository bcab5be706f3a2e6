"""DPT parity cases: timm ViTs with class, distillation and register tokens or none; readouts, depths, indices, heads.

``tu-test_vit`` (timm's 6-block, 64-wide test ViT, any input size) keeps the
cases fast; the ``vit_tiny`` cases cover a real ViT at a reduced or dynamic size.
"""

CASES = [
    ("DPT", {"encoder_name": "tu-test_vit"}, (64, 64)),
    ("DPT", {"encoder_name": "tu-vit_tiny_patch16_224", "img_size": 64, "decoder_intermediate_channels": (32, 64, 128, 128), "decoder_fusion_channels": 64}, (64, 64)),
    ("DPT", {"encoder_name": "tu-vit_tiny_patch16_224", "dynamic_img_size": True, "decoder_readout": "add", "decoder_intermediate_channels": (16, 32, 64, 64), "decoder_fusion_channels": 32, "classes": 3}, (96, 64)),
    ("DPT", {"encoder_name": "tu-test_vit", "decoder_readout": "ignore", "decoder_intermediate_channels": (16, 32, 64, 64), "decoder_fusion_channels": 32, "in_channels": 1, "aux_params": {"classes": 4, "dropout": 0.5, "activation": "sigmoid"}}, (64, 64)),
    ("DPT", {"encoder_name": "tu-test_vit", "reg_tokens": 4, "decoder_readout": "add", "decoder_intermediate_channels": (16, 32, 64, 64), "decoder_fusion_channels": 32, "in_channels": 4, "classes": 2, "activation": "softmax2d"}, (64, 64)),
    ("DPT", {"encoder_name": "tu-test_vit", "class_token": False, "global_pool": "avg", "decoder_intermediate_channels": (16, 32, 64, 64), "decoder_fusion_channels": 32, "aux_params": {"classes": 3, "pooling": "max"}}, (64, 64)),
    ("DPT", {"encoder_name": "tu-test_vit", "encoder_depth": 2, "encoder_output_indices": (1, -1), "decoder_intermediate_channels": (16, 32), "decoder_fusion_channels": 32}, (64, 64)),
    ("DPT", {"encoder_name": "tu-test_vit", "encoder_depth": 5, "decoder_intermediate_channels": (16, 32, 64, 64, 64), "decoder_fusion_channels": 32}, (64, 64)),
    ("DPT", {"encoder_name": "tu-test_vit", "encoder_depth": 3, "encoder_output_indices": (0, 2, 4), "patch_size": 8, "decoder_intermediate_channels": (16, 32, 64), "decoder_fusion_channels": 32}, (64, 64)),
    ("DPT", {"encoder_name": "tu-deit_tiny_distilled_patch16_224", "img_size": 64, "decoder_intermediate_channels": (16, 32, 64, 64), "decoder_fusion_channels": 32, "classes": 2}, (64, 64)),
]
