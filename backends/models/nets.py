"""torch.nn definitions of the built-in reference workloads.

Worker-side only: this module imports torch at module level on purpose, and is imported only
by ``builtin.build_module`` (never by the catalog, which hashes this file's source text
without importing it). Every class here is part of some model's definition hash, so keep
each model's code in the classes and functions it names.
"""

from __future__ import annotations

import logging

import torch  # noqa: TID253 - worker-only module, imported lazily by builtin.build_module
import torch.nn.functional as F  # noqa: TID253
from torch import nn  # noqa: TID253

log = logging.getLogger(__name__)


class MLP(nn.Module):
    """Fully connected ReLU network: ``layers`` hidden layers of ``hidden`` units."""

    def __init__(self, in_features: int, hidden: int, layers: int, out_features: int) -> None:
        super().__init__()
        mods: list[nn.Module] = []
        width = in_features
        for _ in range(layers):
            mods += [nn.Linear(width, hidden), nn.ReLU()]
            width = hidden
        mods.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*mods)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Bottleneck(nn.Module):
    """ResNet v1.5 bottleneck block (stride on the 3×3 conv), expansion 4."""

    expansion = 4

    def __init__(self, in_channels: int, width: int, stride: int) -> None:
        super().__init__()
        out_channels = width * self.expansion
        self.conv1 = nn.Conv2d(in_channels, width, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, 3, stride=stride, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, out_channels, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module | None = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = F.relu(self.bn1(self.conv1(x)))
        out = F.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        return F.relu(out + identity)


class ResNet(nn.Module):
    """ResNet with bottleneck blocks; ``blocks=(3, 4, 6, 3)`` and ``width=64`` is ResNet-50."""

    def __init__(self, blocks: tuple[int, ...], width: int, num_classes: int) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, width, 7, stride=2, padding=3, bias=False),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(3, stride=2, padding=1),
        )
        stages: list[nn.Module] = []
        in_channels = width
        for i, count in enumerate(blocks):
            stage_width = width * 2**i
            for j in range(count):
                stride = 2 if (i > 0 and j == 0) else 1
                stages.append(Bottleneck(in_channels, stage_width, stride))
                in_channels = stage_width * Bottleneck.expansion
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(in_channels, num_classes)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(image))
        x = torch.flatten(F.adaptive_avg_pool2d(x, 1), 1)
        return self.fc(x)


def init_transformer_weights(module: nn.Module) -> None:
    """GPT-2/BERT-style init: N(0, 0.02) weights, zero biases, unit LayerNorm."""
    for m in module.modules():
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, mean=0.0, std=0.02)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.LayerNorm):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


class SelfAttention(nn.Module):
    """Multi-head self-attention over a fused QKV projection (scaled dot product)."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)

    def split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, _ = x.shape
        q, k, v = self.qkv(x).view(b, t, 3, self.heads, self.head_dim).permute(2, 0, 3, 1, 4)
        return q, k, v

    def merge(self, y: torch.Tensor) -> torch.Tensor:
        b, _, t, _ = y.shape
        return self.out(y.transpose(1, 2).reshape(b, t, self.heads * self.head_dim))

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False
    ) -> torch.Tensor:
        q, k, v = self.split(x)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
        return self.merge(y)


class BertLayer(nn.Module):
    """Post-LayerNorm transformer encoder layer (BERT)."""

    def __init__(self, hidden: int, heads: int, intermediate: int) -> None:
        super().__init__()
        self.attn = SelfAttention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ff1 = nn.Linear(hidden, intermediate)
        self.ff2 = nn.Linear(intermediate, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = self.ln1(x + self.attn(x, mask))
        return self.ln2(x + self.ff2(F.gelu(self.ff1(x))))


class BertEncoder(nn.Module):
    """BERT encoder without a task head: returns the last hidden state [batch, seq, hidden]."""

    def __init__(
        self,
        vocab: int,
        hidden: int,
        layers: int,
        heads: int,
        intermediate: int,
        max_positions: int,
    ) -> None:
        super().__init__()
        self.word_emb = nn.Embedding(vocab, hidden)
        self.pos_emb = nn.Embedding(max_positions, hidden)
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.layers = nn.ModuleList(BertLayer(hidden, heads, intermediate) for _ in range(layers))
        init_transformer_weights(self)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.ln(self.word_emb(input_ids) + self.pos_emb(positions))
        mask = attention_mask[:, None, None, :].bool()  # True = attend
        for layer in self.layers:
            x = layer(x, mask)
        return x


class GPTBlock(nn.Module):
    """Pre-LayerNorm decoder block (GPT-2) that can read and fill a KV cache."""

    def __init__(self, hidden: int, heads: int) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(hidden)
        self.attn = SelfAttention(hidden, heads)
        self.ln2 = nn.LayerNorm(hidden)
        self.fc = nn.Linear(hidden, 4 * hidden)
        self.proj = nn.Linear(4 * hidden, hidden)

    def mlp(self, x: torch.Tensor) -> torch.Tensor:
        return self.proj(F.gelu(self.fc(x), approximate="tanh"))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), causal=True)
        return x + self.mlp(self.ln2(x))

    def forward_cached(
        self, x: torch.Tensor, k_cache: torch.Tensor, v_cache: torch.Tensor, start: int
    ) -> torch.Tensor:
        """Attend to the cache plus the new tokens, writing their keys/values at ``start``."""
        q, k, v = self.attn.split(self.ln1(x))
        new = q.shape[2]
        end = start + new
        k_cache[:, :, start:end] = k
        v_cache[:, :, start:end] = v
        keys, values = k_cache[:, :, :end], v_cache[:, :, :end]
        if start == 0:
            y = F.scaled_dot_product_attention(q, keys, values, is_causal=True)
        elif new == 1:
            y = F.scaled_dot_product_attention(q, keys, values)
        else:
            rows = torch.arange(start, end, device=x.device)[:, None]
            allowed = torch.arange(end, device=x.device)[None, :] <= rows
            y = F.scaled_dot_product_attention(q, keys, values, attn_mask=allowed)
        x = x + self.attn.merge(y)
        return x + self.mlp(self.ln2(x))


class GPT(nn.Module):
    """GPT-2-class decoder with a tied LM head; ``forward`` returns logits for every token."""

    def __init__(self, vocab: int, hidden: int, layers: int, heads: int, positions: int) -> None:
        super().__init__()
        self.heads = heads
        self.positions = positions
        self.wte = nn.Embedding(vocab, hidden)
        self.wpe = nn.Embedding(positions, hidden)
        self.blocks = nn.ModuleList(GPTBlock(hidden, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(hidden)
        init_transformer_weights(self)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(self.ln_f(x), self.wte.weight)  # tied with the token embedding

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        for block in self.blocks:
            x = block(x)
        return self.logits(x)

    def new_cache(
        self, batch: int, length: int, dtype: torch.dtype, device: torch.device
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Preallocated per-layer key/value tensors [batch, heads, length, head_dim]."""
        head_dim = self.wte.embedding_dim // self.heads
        shape = (batch, self.heads, length, head_dim)
        return [
            (
                torch.zeros(shape, dtype=dtype, device=device),
                torch.zeros(shape, dtype=dtype, device=device),
            )
            for _ in self.blocks
        ]

    def forward_cached(
        self,
        input_ids: torch.Tensor,
        cache: list[tuple[torch.Tensor, torch.Tensor]],
        start: int,
    ) -> torch.Tensor:
        """Run new tokens at positions ``start``…; returns the last position's logits."""
        positions = torch.arange(start, start + input_ids.shape[1], device=input_ids.device)
        x = self.wte(input_ids) + self.wpe(positions)
        for block, (k_cache, v_cache) in zip(self.blocks, cache, strict=True):
            assert isinstance(block, GPTBlock)
            x = block.forward_cached(x, k_cache, v_cache, start)
        return self.logits(x[:, -1:, :])[:, 0, :]
