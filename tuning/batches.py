"""Training examples as the model trains on them: each question and answer through the model's chat
template with the loss on the answer only (`encode`), grouped into batches of similar length
(`batches`, `collate`), and the loss itself on the answer positions (`answer_loss`,
`validation_loss`). tuning.train runs them; bench/tune.py measures them.
"""

from __future__ import annotations

import random

from kb.errors import BadInput
from tuning.data import Example

SYSTEM = "You answer customers of this business."  # short: every token of it is in every training example


def encode(tokenizer, example: Example) -> tuple[list[int], list[int]]:
    """Input ids and labels through the chat template; labels are -100 on the prompt, so the loss
    is on the answer (and its end-of-turn token) only."""
    prompt = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": example.question}]
    full = prompt + [{"role": "assistant", "content": example.answer}]
    p_ids = _ids(tokenizer.apply_chat_template(prompt, add_generation_prompt=True))
    f_ids = _ids(tokenizer.apply_chat_template(full))
    if f_ids[: len(p_ids)] != p_ids:  # a template that re-renders the prompt differently
        raise BadInput("The model's chat template does not extend the prompt with the answer; this model cannot be fine-tuned here.")
    end = len(f_ids)
    while end > len(p_ids) and tokenizer.decode(f_ids[end - 1:end]).strip() == "":
        end -= 1  # drop the template's trailing newline after <|im_end|>
    ids = f_ids[:end]
    return ids, [-100] * len(p_ids) + ids[len(p_ids):]


def _ids(value) -> list[int]:
    if hasattr(value, "keys"):
        value = value["input_ids"]
    return list(value[0] if value and isinstance(value[0], list) else value)


def batches(encoded: list[tuple[list[int], list[int]]], size: int, rng: random.Random) -> list[list[int]]:
    """Indexes grouped into batches of similar length (little padding), in a shuffled order."""
    order = list(range(len(encoded)))
    rng.shuffle(order)
    groups = []
    window = size * 8
    for start in range(0, len(order), window):
        chunk = sorted(order[start:start + window], key=lambda i: len(encoded[i][0]))
        groups += [chunk[i:i + size] for i in range(0, len(chunk), size)]
    rng.shuffle(groups)
    return groups


def collate(encoded, idx: list[int], pad_id: int, device: str):
    import torch

    width = max(len(encoded[i][0]) for i in idx)
    ids = torch.full((len(idx), width), pad_id, dtype=torch.long)
    labels = torch.full((len(idx), width), -100, dtype=torch.long)
    mask = torch.zeros((len(idx), width), dtype=torch.long)
    for row, i in enumerate(idx):
        x, y = encoded[i]
        ids[row, : len(x)] = torch.tensor(x)
        labels[row, : len(y)] = torch.tensor(y)
        mask[row, : len(x)] = 1
    return ids.to(device), mask.to(device), labels.to(device)


def answer_loss(model, ids, mask, labels, reduction: str = "mean"):
    """Cross-entropy on the answer tokens only. The output layer (49,152 words wide, a fifth of the
    compute) runs on the answer positions alone instead of every position."""
    import torch

    causal = model.get_base_model()
    hidden = causal.model(input_ids=ids, attention_mask=mask).last_hidden_state[:, :-1]
    target = labels[:, 1:]
    keep = target != -100
    logits = causal.lm_head(hidden[keep]).float()
    return torch.nn.functional.cross_entropy(logits, target[keep], reduction=reduction), int(keep.sum())


def validation_loss(model, encoded, pad_id: int, device: str, size: int = 16) -> float:
    """Mean loss per answer token over the validation examples."""
    import torch

    if not encoded:
        return float("nan")
    model.eval()
    total, count = 0.0, 0
    with torch.inference_mode():
        for start in range(0, len(encoded), size):
            idx = list(range(start, min(start + size, len(encoded))))
            ids, mask, labels = collate(encoded, idx, pad_id, device)
            loss, n = answer_loss(model, ids, mask, labels, reduction="sum")
            total += float(loss)
            count += n
    model.train()
    return total / max(count, 1)
