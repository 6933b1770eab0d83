"""What a model is and where it comes from: sources (hub, local folder, synthetic), synthetic
checkpoints, the harmony chat format and prompts of an exact token length."""
