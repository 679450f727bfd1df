"""Diagonal Fisher information from exact per-sample gradients (METHOD.md section 3a).

    F = (1/M) Σ_i (∇θ log p(y_i | x_i, θ))²       (unnormalised; the network in eval mode)

The fast path never materialises whole-model per-sample gradients. Forward hooks keep each layer's input and a tensor
hook on its output receives the per-sample output gradient g during one backward pass of Σ_i −log p(y_i | x_i); in
eval mode the samples do not interact, so g[i] is exactly sample i's gradient. From (a, g):

- Linear:      per-sample grad g_i a_iᵀ, so Σ_i (g_i a_iᵀ)² = (g²)ᵀ(a²); bias Σ_i g_i².
- Conv2d:      per-sample grad g_i @ unfold(a_i)ᵀ (a batched matmul), squared and summed; bias Σ_i (Σ_l g_il)².
- BatchNorm:   y = γ·x̂ + β with running statistics, so per-sample grads are Σ_hw g·x̂ (γ) and Σ_hw g (β).

Parameters are never asked for gradients (they are switched off for the pass), so backward only propagates input
gradients. Models with other parameterised layers, shared modules or grouped convolutions go through the generic
`torch.func.vmap(grad(...))` path, and so do models with convolutions by default: there vmap's grouped-convolution
weight gradient is faster on the CPU than the nine strided copies + batched matmuls per 3x3 kernel of the hooks. `fisher_reference` is the explicit per-sample loop used to check both.

Vector layout: the included parameters in `named_parameters()` order, each flattened. With `include_head=True` the
classifier head (`model.head`) is included and its weight rows / bias entries are zero-padded to `head_classes`
classes, so the Fishers of networks with different class counts have the same length; the padded entries are 0.
"""
from __future__ import annotations

import torch
from torch import nn
import torch.nn.functional as F

from engine.similarity.probe import slices
from engine.data.tasks import TaskData, to_input

FISHER_MODES = ("empirical", "model")
_CHUNK_ELEMS = 1 << 24  # cap on a per-sample-gradient block (elements) in the conv trick


# ---------------------------------------------------------------- parameters and layout

def _head_names(model: nn.Module) -> set[str]:
    head = getattr(model, "head", None)
    if head is None:
        return set()
    ids = {id(p) for p in head.parameters()}
    return {n for n, p in model.named_parameters() if id(p) in ids}


def fisher_parameters(model: nn.Module, include_head: bool = False) -> list[tuple[str, nn.Parameter]]:
    """The parameters a Fisher covers, in vector order."""
    head = _head_names(model)
    if not include_head and not head:
        raise ValueError("model has no `head` attribute: cannot exclude the classifier head")
    return [(n, p) for n, p in model.named_parameters() if include_head or n not in head]


def _flatten(model: nn.Module, params: list[tuple[str, nn.Parameter]], sums: dict[str, torch.Tensor], count: int,
             include_head: bool, head_classes: int | None) -> torch.Tensor:
    head = _head_names(model) if include_head else set()
    parts = []
    for name, p in params:
        v = sums[name].detach().to("cpu", torch.float64) / count
        if name in head and head_classes is not None:
            rows = p.shape[0]
            if head_classes < rows:
                raise ValueError(f"head_classes={head_classes} is smaller than the head's {rows} classes")
            v = torch.cat([v, v.new_zeros((head_classes - rows,) + tuple(v.shape[1:]))])
        parts.append(v.reshape(-1))
    return torch.cat(parts).float()


def sample_labels(model: nn.Module, x: torch.Tensor, generator: torch.Generator | None = None,
                  batch_size: int = 512) -> torch.Tensor:
    """Labels drawn from the network's own predictive distribution (the 'model' Fisher), on the CPU."""
    from engine.similarity.probe import predict_logits

    probs = torch.softmax(predict_logits(model, x, batch_size=batch_size).double(), dim=1).cpu()
    if len(probs) == 0:
        return torch.empty(0, dtype=torch.long)
    return torch.multinomial(probs, 1, generator=generator).squeeze(1)


def _labels(model, x, y, mode, generator) -> torch.Tensor:
    if mode not in FISHER_MODES:
        raise ValueError(f"unknown Fisher mode {mode!r}: use one of {', '.join(FISHER_MODES)}")
    if mode == "model":
        return sample_labels(model, x, generator)
    if y is None:
        raise ValueError("the empirical Fisher needs labels y")
    if len(y) != len(x):
        raise ValueError(f"x has {len(x)} samples but y has {len(y)}")
    return y.long().cpu()


# ---------------------------------------------------------------- fast path (hooks)

_SUPPORTED = (nn.Linear, nn.Conv2d, nn.BatchNorm2d, nn.BatchNorm1d)


def _supports_hooks(model: nn.Module, params: list[tuple[str, nn.Parameter]]) -> bool:
    wanted = {id(p) for _, p in params}
    for module in model.modules():
        own = [p for p in module.parameters(recurse=False) if id(p) in wanted]
        if not own:
            continue
        if not isinstance(module, _SUPPORTED):
            return False
        if isinstance(module, nn.Conv2d) and (module.groups != 1 or module.padding_mode != "zeros"
                                              or isinstance(module.padding, str)):
            return False
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)) and not module.track_running_stats:
            return False
    return True


class _Unsupported(Exception):
    pass


class _LayerStats:
    """Hooks that accumulate Σ_i (per-sample grad)² for one module's included parameters."""

    def __init__(self, module: nn.Module, names: dict[str, str], sums: dict[str, torch.Tensor]):
        self.module, self.names, self.sums = module, names, sums  # names: local param name -> full name
        self.calls = 0

    def forward_hook(self, module, inputs, output):
        self.calls += 1
        if self.calls > 1:
            raise _Unsupported("module called more than once per forward")
        a = inputs[0].detach()
        if isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
            shape = (1, -1) + (1,) * (a.dim() - 2)
            a = (a - module.running_mean.view(shape)) * torch.rsqrt(module.running_var.view(shape) + module.eps)
        version = inputs[0]._version

        def on_grad(g: torch.Tensor, a=a, version=version, src=inputs[0]) -> None:
            if src._version != version and not isinstance(module, (nn.BatchNorm1d, nn.BatchNorm2d)):
                raise _Unsupported("layer input modified in place")
            self.accumulate(a, g.detach())

        output.register_hook(on_grad)

    def _add(self, local: str, value: torch.Tensor) -> None:
        full = self.names.get(local)
        if full is not None:
            self.sums[full] += value

    def accumulate(self, a: torch.Tensor, g: torch.Tensor) -> None:
        m = self.module
        a, g = a.float(), g.float()
        if isinstance(m, nn.Linear):
            if a.dim() == 2:
                self._add("weight", (g * g).t() @ (a * a))
                self._add("bias", (g * g).sum(0))
            else:  # extra dims: per-sample grad sums over them
                a3, g3 = a.reshape(a.shape[0], -1, a.shape[-1]), g.reshape(g.shape[0], -1, g.shape[-1])
                self._add("weight", torch.bmm(g3.transpose(1, 2), a3).pow_(2).sum(0))
                self._add("bias", g3.sum(1).pow(2).sum(0))
        elif isinstance(m, nn.Conv2d):
            self._conv(a, g)
        else:  # batch-norm, eval mode: a already holds x̂
            dims = tuple(range(2, g.dim()))
            if "weight" in self.names:
                self._add("weight", ((g * a).sum(dims) if dims else g * a).pow(2).sum(0))
            if "bias" in self.names:
                self._add("bias", (g.sum(dims) if dims else g).pow(2).sum(0))

    def _conv(self, a: torch.Tensor, g: torch.Tensor) -> None:
        m = self.module
        B, c_out = g.shape[0], g.shape[1]
        g = g.reshape(B, c_out, -1)
        if "bias" in self.names:
            self._add("bias", g.sum(2).pow(2).sum(0))
        if "weight" not in self.names:
            return
        # One batched matmul per kernel offset: faster on the CPU than materialising im2col (F.unfold or a stack).
        offsets = m.kernel_size[0] * m.kernel_size[1]
        step = max(1, _CHUNK_ELEMS // max(m.in_channels * max(c_out, g.shape[2]), 1))
        acc = torch.zeros(c_out, m.in_channels, offsets, device=g.device, dtype=torch.float32)
        for s in range(0, B, step):
            gs = g[s:s + step]
            for o, cols in enumerate(_shifted(a[s:s + step], m, g.shape[2])):
                acc[:, :, o] += torch.bmm(gs, cols.transpose(1, 2)).pow_(2).sum(0)  # per-sample [b, c_out, c_in]
        self._add("weight", acc.view_as(m.weight))


def _shifted(a: torch.Tensor, conv: nn.Conv2d, length: int) -> list[torch.Tensor]:
    """For each kernel offset (i, j), in the weight's order, the input pixels it multiplies: [B, C_in, L] each."""
    (kh, kw), (sh, sw), (dh, dw), (ph, pw) = conv.kernel_size, conv.stride, conv.dilation, conv.padding
    if ph or pw:
        a = F.pad(a, (pw, pw, ph, ph))
    ho = (a.shape[2] - dh * (kh - 1) - 1) // sh + 1
    wo = (a.shape[3] - dw * (kw - 1) - 1) // sw + 1
    if ho * wo != length:
        raise _Unsupported("unexpected convolution output size")
    return [a[:, :, i * dh: i * dh + (ho - 1) * sh + 1: sh, j * dw: j * dw + (wo - 1) * sw + 1: sw]
            .reshape(a.shape[0], a.shape[1], ho * wo) for i in range(kh) for j in range(kw)]


def _fisher_hooks(model, x, labels, params, batch_size) -> dict[str, torch.Tensor]:
    device = next(model.parameters()).device
    sums = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params}
    full_name = {id(p): n for n, p in params}
    layers = []
    for module in model.modules():
        names = {local: full_name[id(p)] for local, p in module.named_parameters(recurse=False) if id(p) in full_name}
        if names:
            layers.append(_LayerStats(module, names, sums))
    saved = [(p, p.requires_grad) for p in model.parameters()]
    handles = []
    try:
        for p, _ in saved:
            p.requires_grad_(False)
        for layer in layers:
            handles.append(layer.module.register_forward_hook(layer.forward_hook))
        for idx in slices(len(x), batch_size):
            for layer in layers:
                layer.calls = 0
            xb = to_input(x[idx], device).requires_grad_(True)
            yb = labels[idx].to(device)
            logp = torch.log_softmax(model(xb).float(), dim=1)
            loss = -logp.gather(1, yb[:, None]).sum()
            torch.autograd.grad(loss, xb)
            if any(layer.calls != 1 for layer in layers):
                raise _Unsupported("a parameterised module was not called exactly once")
    finally:
        for h in handles:
            h.remove()
        for p, flag in saved:
            p.requires_grad_(flag)
    return sums


# ---------------------------------------------------------------- generic path (torch.func)

def _fisher_vmap(model, x, labels, params, batch_size) -> dict[str, torch.Tensor]:
    from torch.func import functional_call, grad, vmap

    device = next(model.parameters()).device
    names = [n for n, _ in params]
    fixed = {n: p.detach() for n, p in model.named_parameters() if n not in set(names)}
    fixed.update({n: b for n, b in model.named_buffers()})

    def log_lik(theta: dict, xi: torch.Tensor, yi: torch.Tensor) -> torch.Tensor:
        out = functional_call(model, {**fixed, **theta}, (xi[None],))
        return torch.log_softmax(out.float(), dim=1)[0].gather(0, yi[None])[0]

    per_sample = vmap(grad(log_lik), in_dims=(None, 0, 0))
    theta = {n: p.detach() for n, p in params}
    sums = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params}
    for idx in slices(len(x), batch_size):
        grads = per_sample(theta, to_input(x[idx], device), labels[idx].to(device))
        for n in names:
            sums[n] += grads[n].float().pow(2).sum(0)
    return sums


# ---------------------------------------------------------------- public API

def diagonal_fisher(model: nn.Module, x_uint8: torch.Tensor, y: torch.Tensor | None, *, mode: str = "empirical",
                    include_head: bool = False, head_classes: int | None = None, batch_size: int = 256,
                    generator: torch.Generator | None = None, method: str = "auto") -> torch.Tensor:
    """Diagonal Fisher of `model` on uint8 images `x_uint8` [M, 1, H, W]: a flat float32 CPU tensor, unnormalised.

    `mode="empirical"` uses the labels `y`; `mode="model"` draws labels from the network's predictive distribution
    with `generator` (a CPU generator; `y` is ignored). `method` is "auto", "hooks" or "vmap". "auto" takes vmap for
    models with convolutions (benchmarks/bench_fisher.py: 0.81-0.88x the hooks' time on the CNN probe, equal within
    1e-7) and for layers without a per-sample trick, the hooks otherwise.
    """
    if len(x_uint8) == 0:
        raise ValueError("the Fisher needs at least one sample")
    params = fisher_parameters(model, include_head)
    if not params:
        raise ValueError("the model has no parameters to compute a Fisher over")
    was_training = model.training
    model.eval()
    try:
        labels = _labels(model, x_uint8, y, mode, generator)
        if method not in ("auto", "hooks", "vmap"):
            raise ValueError(f"unknown Fisher method {method!r}: use auto, hooks or vmap")
        supported = _supports_hooks(model, params)
        if method == "hooks" and not supported:
            raise ValueError("the model has a parameterised layer without a per-sample trick: use method='vmap'")
        has_conv = any(isinstance(m, nn.Conv2d) for m in model.modules())
        use_hooks = supported and (method == "hooks" or (method == "auto" and not has_conv))
        sums = None
        if use_hooks:
            try:
                sums = _fisher_hooks(model, x_uint8, labels, params, batch_size)
            except _Unsupported:
                if method == "hooks":
                    raise
        if sums is None:
            sums = _fisher_vmap(model, x_uint8, labels, params, max(1, min(batch_size, 64)))
        return _flatten(model, params, sums, len(x_uint8), include_head, head_classes)
    finally:
        model.train(was_training)


def fisher_reference(model: nn.Module, x_uint8: torch.Tensor, y: torch.Tensor | None, *, mode: str = "empirical",
                     include_head: bool = False, head_classes: int | None = None,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """The same quantity by an explicit loop: one forward and backward per sample (slow; for tests and benchmarks)."""
    params = fisher_parameters(model, include_head)
    was_training = model.training
    model.eval()
    try:
        labels = _labels(model, x_uint8, y, mode, generator)
        device = next(model.parameters()).device
        sums = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params}
        tensors = [p for _, p in params]
        for i in range(len(x_uint8)):
            logp = torch.log_softmax(model(to_input(x_uint8[i:i + 1], device)).float(), dim=1)
            grads = torch.autograd.grad(logp[0, int(labels[i])], tensors, allow_unused=True)
            for (n, _), g in zip(params, grads):
                if g is not None:
                    sums[n] += g.float().pow(2)
        return _flatten(model, params, sums, len(x_uint8), include_head, head_classes)
    finally:
        model.train(was_training)


def fisher_layout(model: nn.Module, include_head: bool = False,
                  head_classes: int | None = None) -> list[tuple[str, int]]:
    """(parameter name, length) of each block of the Fisher vector, in order."""
    head = _head_names(model) if include_head else set()
    out = []
    for name, p in fisher_parameters(model, include_head):
        n = p.numel()
        if name in head and head_classes is not None:
            n = n // p.shape[0] * head_classes
        out.append((name, n))
    return out


# ---------------------------------------------------------------- a task's Fisher in the dictionary

class _Features(nn.Module):
    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(x)


def feature_fisher(model: nn.Module, x_uint8: torch.Tensor, *, generator: torch.Generator | None = None,
                   batch_size: int = 64) -> torch.Tensor:
    """The label-free "domain" Fisher of a probe's body on uint8 images: a flat float32 CPU tensor, unnormalised,
    laid out as `fisher_layout(model)` (head excluded).

    It is the Fisher of an isotropic Gaussian model of the body's features φ(x) (`model.features`), diag E_x[JᵀJ]
    with J = ∂φ(x)/∂θ: which filters the task's inputs move, whatever the labels. Estimated with one random
    direction v ~ N(0, I) per sample, E_v[(vᵀJ)²] = diag(JᵀJ), so a pass costs one per-sample gradient like the
    classifier Fisher. Deterministic for a generator state."""
    from torch.func import functional_call, grad, vmap

    params = fisher_parameters(model, include_head=False)
    if not params:
        raise ValueError("the model has no body parameters to compute a Fisher over")
    if len(x_uint8) == 0:
        raise ValueError("cannot compute a Fisher on no samples")
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        wrapper = _Features(model)
        names = [n for n, _ in params]
        theta = {f"model.{n}": p.detach() for n, p in params}
        fixed = {f"model.{n}": p.detach() for n, p in model.named_parameters() if n not in set(names)}
        fixed.update({f"model.{n}": b for n, b in model.named_buffers()})
        with torch.no_grad():
            width = wrapper(to_input(x_uint8[:1], device)).shape[1]
        v = torch.randn(len(x_uint8), width, generator=generator).to(device)

        def projected(th: dict, xi: torch.Tensor, vi: torch.Tensor) -> torch.Tensor:
            return (functional_call(wrapper, {**fixed, **th}, (xi[None],))[0].float() * vi).sum()

        per_sample = vmap(grad(projected), in_dims=(None, 0, 0))
        sums = {n: torch.zeros_like(p, dtype=torch.float32) for n, p in params}
        for idx in slices(len(x_uint8), batch_size):
            grads = per_sample(theta, to_input(x_uint8[idx], device), v[idx])
            for n in names:
                sums[n] += grads[f"model.{n}"].float().pow(2).sum(0)
        return _flatten(model, params, sums, len(x_uint8), False, None)
    finally:
        model.train(was_training)


def fisher_sample_index(task: TaskData, samples: int) -> torch.Tensor:
    """The M train-split rows that represent task t in every Fisher on t's data; fixed by t's seed."""
    gen = torch.Generator().manual_seed(9_176 + task.definition.seed)
    n = len(task.train_y)
    return torch.randperm(n, generator=gen)[: min(samples, n)].sort().values


def fisher_samples(task: TaskData, samples: int) -> tuple[torch.Tensor, torch.Tensor, int]:
    """(x, y, task seed): the M rows every Fisher on task t's data uses; all a Fisher pass needs of t."""
    idx = fisher_sample_index(task, samples)
    return (task.train_x[idx.to(task.train_x.device)], task.train_y[idx.to(task.train_y.device)],
            task.definition.seed)


def classifier_fisher(net: torch.nn.Module, samples: tuple[torch.Tensor, torch.Tensor, int], s: int, d,
                      head_classes: int | None = None) -> torch.Tensor:
    """`net`'s diagonal Fisher (METHOD 3a) on a task's `fisher_samples` (seed index s), under [dictionary] settings
    `d` (`fisher` mode, `include_head`); the head zero-padded to `head_classes` when given."""
    x, y, task_seed = samples
    gen = torch.Generator().manual_seed(31_337 + 1000 * task_seed + s)
    return diagonal_fisher(net, x, y, mode=d.fisher, include_head=d.include_head, head_classes=head_classes,
                           generator=gen)


def domain_fisher(net: torch.nn.Module, samples: tuple[torch.Tensor, torch.Tensor, int], s: int, d,
                  head_classes: int | None = None) -> torch.Tensor:
    """The label-free "domain" Fisher (`feature_fisher`) of `net`'s body on a task's `fisher_samples` inputs. One
    sequence of random directions for every task (common random numbers): the estimator's noise is shared, so it
    largely cancels in the distance between two tasks. Labels and heads play no part."""
    return feature_fisher(net, samples[0], generator=torch.Generator().manual_seed(31_337 + s))


def pad_head(vec: torch.Tensor, model: nn.Module, head_classes: int) -> torch.Tensor:
    """Zero-pads the head blocks of a Fisher computed with include_head=True (unpadded) to `head_classes` rows."""
    head_names = _head_names(model)
    parts, start = [], 0
    for name, n in fisher_layout(model, include_head=True):
        block = vec[start:start + n]
        start += n
        if name in head_names:
            rows = model.get_parameter(name).shape[0]
            block = torch.cat([block, block.new_zeros(n // rows * (head_classes - rows))])
        parts.append(block)
    if start != len(vec):
        raise ValueError(f"Fisher vector has {len(vec)} entries, the probe's layout {start}")
    return torch.cat(parts)
