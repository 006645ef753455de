"""Development-time tool: open_clip models to verified ONNX model packs.

Needs the ``export`` extra (torch, open_clip_torch, onnx). The app itself never imports this.
"""
