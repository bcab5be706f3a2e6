"""Decoder blocks, one module per architecture (``specseg.decoders.<architecture>``).

Each module holds the decoder's ``nn.Module`` blocks and nothing else; the
spec section that configures it lives in :mod:`specseg.spec.decoders`.
Every decoder takes ``encoder_channels`` (the encoder's ``out_channels``)
and exposes ``out_channels``, the channel count its output feeds the head.
"""
