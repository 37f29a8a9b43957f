"""The model: an exported model directory, ONNX Runtime inference, note decoding."""
