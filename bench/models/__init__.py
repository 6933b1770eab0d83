"""What a model is and where it comes from: sources (hub, local folder, synthetic), synthetic
checkpoints, the device it runs on, the harmony chat format and its channels, and prompts of an
exact token length."""
