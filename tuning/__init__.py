"""Fine-tuning: LoRA adapters trained on the owner's FAQ pairs, and answers from them."""
