"""Decoder capture: a decoder's computation traced by torch.fx and read as an MLP (``mlp.MLP``).

``mlp_of(decoder, x)`` traces an ``nn.Module`` or a bound method of one (``model.decode``)
through nested modules, and recognises, as modules, torch/F functions or tensor methods:

    dense layer   nn.Linear (or a subclass that calls F.linear), F.linear on parameters
    activation    tanh, sigmoid, relu, leaky_relu (slope ≥ 0), elu (α ≥ 0), softplus, identity
    affine map    h·s, s·h, h/s, h + c, c + h, h − c, c − h, −h with Python numbers s, c
    reshape       view, reshape, flatten, unflatten, contiguous, nn.Flatten, nn.Unflatten (rows
                  stay rows: checked below); nn.Identity and dropout in eval mode are identities too
    two heads     a (mean, log-variance) tuple: two dense heads on a shared trunk, or one dense
                  layer cut in two by chunk(2, dim=1)

A chain of these is an MLP with at most one activation per dense layer: affine maps before an
activation fold into that layer's W and b, maps after a hidden layer's activation fold into the
next layer, and a head keeps its map s·φ + c. Every operation of the graph must be on the
chain (shape queries aside), so a branch, a residual sum or an in-place side effect is not
mistaken for an MLP. The MLP is then checked against the decoder itself on a few probe rows
(the output's shape, and its values within √eps of the output's scale).

Not an MLP (convolutions, normalisation, anything else), or not a module: None, and the decoder
runs on the autograd path. A module that torch.fx cannot trace (data-dependent control flow, ...)
or whose MLP differs from it on the probe: None too, with one warning per decoder saying why.
"""
from __future__ import annotations

import operator
import warnings
import weakref
from dataclasses import dataclass

import torch
from torch import fx, nn

from . import mlp
from .autograd import _same_layout as same_layout

F = nn.functional
_WARNED = weakref.WeakKeyDictionary()  # module -> names of its methods already warned about
# module -> {method name: its traced graph}, reused while the graph still reads as an MLP that
# passes the probe (a changed module fails one or the other and is traced again)
_GRAPHS = weakref.WeakKeyDictionary()
_PROBE_ROWS = 3


class _NotMLP(Exception):
    """The graph is not an MLP (the decoder takes the autograd path, silently)."""


@dataclass
class _Linear:
    weight: torch.Tensor  # [out, in]
    bias: torch.Tensor | None  # [out]


@dataclass
class _Affine:
    """h ↦ s·h + c."""

    scale: float = 1.0
    shift: float = 0.0

    def then(self, other: "_Affine") -> "_Affine":
        """other ∘ self."""
        return _Affine(other.scale * self.scale, other.scale * self.shift + other.shift)

    @property
    def identity(self) -> bool:
        return self.scale == 1.0 and self.shift == 0.0


@dataclass
class _Act:
    act: mlp.Activation


@dataclass
class _Reshape:
    pass


@dataclass
class _Half:
    """Piece ``index`` of chunk(2, dim=1) of the previous output."""

    index: int


class _Method(nn.Module):
    """``owner.<name>(z)`` as a module's forward, so that torch.fx traces into any method of
    ``owner`` with its parameters reachable as attributes."""

    def __init__(self, owner: nn.Module, name: str):
        super().__init__()
        self.owner, self.name = owner, name

    def forward(self, z):
        return getattr(self.owner, self.name)(z)


class _Tracer(fx.Tracer):
    """torch.fx's tracer that adopts a module the traced code calls but that is not a submodule of
    the root (one held in a closure or a global) as a submodule, so that the graph can name it."""

    def path_of_module(self, mod: nn.Module) -> str:
        try:
            return super().path_of_module(mod)
        except NameError:
            name = f"adopted{len(list(self.root.children()))}"
            self.root.add_module(name, mod)
            if getattr(self, "submodule_paths", None) is not None:
                self.submodule_paths.update({m: f"{name}.{path}" if path else name for path, m in mod.named_modules()})
            return name


def _owner(decoder):
    """(module, method name) of a module or of a module's bound method, else None."""
    if isinstance(decoder, nn.Module):
        return decoder, "forward"
    owner = getattr(decoder, "__self__", None)
    if isinstance(owner, nn.Module) and getattr(owner, decoder.__name__, None) == decoder:
        return owner, decoder.__name__
    return None


def _hooked(root: nn.Module) -> bool:
    hooks = nn.modules.module
    if hooks._global_forward_hooks or hooks._global_forward_pre_hooks:
        return True
    return any(m._forward_hooks or m._forward_pre_hooks for m in root.modules())


def _warn(owner: nn.Module, name: str, why: str) -> None:
    """Warn once per decoder that it runs on the autograd path, and why."""
    try:
        seen = _WARNED.setdefault(owner, set())
    except TypeError:  # not weak-referenceable
        seen = set()
    if name in seen:
        return
    seen.add(name)
    label = type(owner).__name__ + ("" if name == "forward" else f".{name}")
    warnings.warn(f"decoder {label}: not on the fast path ({why}); it runs on the autograd path, with the "
                  "same results", stacklevel=4)


def mlp_of(decoder, x: torch.Tensor):
    """The MLP computing ``decoder`` on rows of latents for data ``x`` [N, *event], or None. The
    traced graph of a module's method is kept (weakly, per module) and read again on the next
    call, which then checks the probe rows again but skips the trace (a few ms)."""
    found = _owner(decoder)
    if found is None or _hooked(found[0]):
        return None
    owner, name = found
    try:
        graphs = _GRAPHS.setdefault(owner, {})
    except TypeError:  # not weak-referenceable: trace every time
        graphs = {}
    if name in graphs:
        net = _reread(graphs[name], decoder, x, owner, name)
        if net is not None:
            return net
        del graphs[name]  # the module changed: trace it again
    root = _Method(owner, name)
    try:
        graph = _Tracer().trace(root)  # the graph's targets name attributes of root
    except Exception as exc:  # any failure of tracing user code means: not captured
        _warn(owner, name, f"torch.fx cannot trace it: {type(exc).__name__}: {exc}")
        return None
    if _hooked(root):  # an adopted module with hooks
        return None
    try:
        net = _read(graph, root, x.dtype, x.device)
    except _NotMLP:
        return None
    net = _checked(net, decoder, x, owner, name)
    if net is not None and list(root.children()) == [owner]:  # no adopted module: the graph names owner's attributes only
        graphs[name] = graph
    return net


def _reread(graph: fx.Graph, decoder, x: torch.Tensor, owner, name):
    """The MLP of a kept graph on ``owner`` as it is now, if it still reads as one and passes the
    probe (quietly: else None, and the caller traces again)."""
    try:
        net = _read(graph, _Method(owner, name), x.dtype, x.device)
    except Exception:  # _NotMLP, or an attribute the graph names is gone
        return None
    return _checked(net, decoder, x, owner, name, quiet=True)


def _checked(net: mlp.MLP, decoder, x: torch.Tensor, owner, name, quiet: bool = False):
    """``net`` if it gives the decoder's output on probe rows, else None (with a warning unless ``quiet``)."""
    K, P = net.latent_dim, x[0].numel()
    z = torch.linspace(-1.5, 1.5, _PROBE_ROWS * K, dtype=x.dtype, device=x.device).reshape(_PROBE_ROWS, K)
    with torch.no_grad():
        try:
            want = decoder(z)
        except Exception:  # the autograd path reports the decoder's own error on the real input
            return None
        got = net.forward(z)
    want, got = (list(want), list(got)) if isinstance(got, tuple) else ([want], [got])
    if len(want) != len(got) or not all(isinstance(w, torch.Tensor) and w.shape[:1] == (_PROBE_ROWS,)
                                        and w[0].numel() == P and same_layout(w.shape[1:], x.shape[1:])
                                        for w in want):
        return None  # not the data's shape: the autograd path reports it
    tol = torch.finfo(x.dtype).eps ** 0.5
    for w, g in zip(want, got):
        w = w.reshape(_PROBE_ROWS, P)
        if g.shape != w.shape or not torch.allclose(g, w, rtol=tol, atol=tol * float(w.abs().max())):
            if not quiet:
                _warn(owner, name, "its traced graph, read as an MLP, differs from it on probe rows")
            return None
    return net


# ---- reading the graph ----------------------------------------------------------------------

_SHAPE_METHODS = {"size", "dim", "numel"}
_SHAPE_ATTRIBUTES = {"shape", "ndim", "dtype", "device"}
_RESHAPE_METHODS = {"view", "reshape", "flatten", "unflatten", "contiguous"}
_RESHAPE_FUNCTIONS = {torch.reshape, torch.flatten, torch.unflatten}
_RESHAPE_MODULES = {nn.Identity, nn.Flatten, nn.Unflatten}
_DROPOUT = {nn.Dropout, nn.Dropout1d, nn.AlphaDropout}  # the identity in eval mode
_SCALAR_OPS = {operator.getitem, operator.add, operator.sub, operator.mul, operator.floordiv, operator.neg}

# activations by name: (twin factory, its parameters with their defaults); None: unsupported values
_ACTIVATIONS = {
    "tanh": (mlp.Tanh, {}),
    "sigmoid": (mlp.Sigmoid, {}),
    "relu": (lambda inplace: mlp.ReLU(), {"inplace": False}),
    "leaky_relu": (lambda negative_slope, inplace: mlp.LeakyReLU(float(negative_slope)) if negative_slope >= 0 else None,
                   {"negative_slope": 0.01, "inplace": False}),
    "elu": (lambda alpha, inplace: mlp.ELU(float(alpha)) if alpha >= 0 else None, {"alpha": 1.0, "inplace": False}),
    "softplus": (lambda beta, threshold: mlp.Softplus(float(beta), float(threshold)), {"beta": 1.0, "threshold": 20.0}),
}
_ACTIVATION_FUNCTIONS = {
    torch.tanh: "tanh", F.tanh: "tanh", torch.sigmoid: "sigmoid", F.sigmoid: "sigmoid", torch.relu: "relu",
    F.relu: "relu", torch.relu_: "relu", F.relu_: "relu", F.leaky_relu: "leaky_relu", F.elu: "elu",
    F.softplus: "softplus",
}
_ACTIVATION_METHODS = {"tanh": "tanh", "tanh_": "tanh", "sigmoid": "sigmoid", "sigmoid_": "sigmoid", "relu": "relu",
                       "relu_": "relu"}
_ACTIVATION_MODULES = {nn.Tanh: ("tanh", ()), nn.Sigmoid: ("sigmoid", ()), nn.ReLU: ("relu", ("inplace",)),
                       nn.LeakyReLU: ("leaky_relu", ("negative_slope", "inplace")),
                       nn.ELU: ("elu", ("alpha", "inplace")), nn.Softplus: ("softplus", ("beta", "threshold"))}
_AFFINE = {operator.mul: "mul", torch.mul: "mul", operator.truediv: "div", torch.div: "div", operator.add: "add",
           torch.add: "add", operator.sub: "sub", torch.sub: "sub", operator.neg: "neg", torch.neg: "neg"}


def _activation(name: str, args: tuple, kwargs: dict) -> mlp.Activation:
    """The twin of activation ``name`` called with (args, kwargs) after its input."""
    factory, defaults = _ACTIVATIONS[name]
    if len(args) > len(defaults) or set(kwargs) - set(defaults):
        raise _NotMLP(f"{name}: unexpected arguments")
    values = {**defaults, **dict(zip(defaults, args)), **kwargs}
    act = factory(**values)
    if act is None:
        raise _NotMLP(f"{name}: unsupported parameters {values}")
    return act


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _affine(kind: str, args: tuple, kwargs: dict):
    """(_Affine, input node) of an elementwise arithmetic node with one tensor and one number."""
    if kwargs:
        raise _NotMLP(f"{kind}: keyword arguments")
    if kind == "neg":
        return _Affine(-1.0), args[0]
    a, b = args
    if isinstance(a, fx.Node) and _number(b):
        return {"mul": _Affine(float(b)), "div": _Affine(1.0 / b), "add": _Affine(1.0, float(b)),
                "sub": _Affine(1.0, -float(b))}[kind], a
    if _number(a) and isinstance(b, fx.Node) and kind != "div":
        return {"mul": _Affine(float(a)), "add": _Affine(1.0, float(a)), "sub": _Affine(-1.0, float(a))}[kind], b
    raise _NotMLP(f"{kind} of two tensors")


def _attribute(root: nn.Module, node) -> torch.Tensor | None:
    """The tensor behind a get_attr node (None stays None)."""
    if node is None:
        return None
    if not (isinstance(node, fx.Node) and node.op == "get_attr"):
        raise _NotMLP("F.linear with computed weights")
    value = root
    for part in node.target.split("."):
        value = getattr(value, part)
    return value


def _linear(root, node):
    """(_Linear, input node) of F.linear(input, weight, bias=None)."""
    names = ("input", "weight", "bias")
    values = {"bias": None, **dict(zip(names, node.args)), **node.kwargs}
    return _Linear(_attribute(root, values["weight"]), _attribute(root, values["bias"])), values["input"]


def _recognise(root: nn.Module, node: fx.Node):
    """(op, input node, nodes consumed besides ``node``) of a node on the chain."""
    args, kwargs = node.args, node.kwargs
    if node.op == "call_module":
        module = root.get_submodule(node.target)
        if len(args) != 1 or kwargs:
            raise _NotMLP(f"module {node.target} called with more than its input")
        if type(module) is nn.Linear:
            return _Linear(module.weight, module.bias), args[0], ()
        if type(module) in _RESHAPE_MODULES or (type(module) in _DROPOUT and not module.training):
            return _Reshape(), args[0], ()
        if type(module) in _ACTIVATION_MODULES:
            name, params = _ACTIVATION_MODULES[type(module)]
            return _Act(_activation(name, (), {p: getattr(module, p) for p in params})), args[0], ()
        raise _NotMLP(f"module {type(module).__name__}")
    if node.op == "call_function":
        target = node.target
        if target is F.linear:
            op, source = _linear(root, node)
            return op, source, ()
        if target in _ACTIVATION_FUNCTIONS:
            return _Act(_activation(_ACTIVATION_FUNCTIONS[target], args[1:], kwargs)), args[0], ()
        if target in _AFFINE:
            op, source = _affine(_AFFINE[target], args, kwargs)
            return op, source, ()
        if target in _RESHAPE_FUNCTIONS:
            return _Reshape(), args[0], ()
        if target is operator.getitem and isinstance(args[0], fx.Node) and _is_chunk(args[0]):
            return _Half(args[1]), args[0].args[0], (args[0],)
        raise _NotMLP(f"function {getattr(target, '__name__', target)}")
    if node.op == "call_method":
        if node.target in _ACTIVATION_METHODS:
            return _Act(_activation(_ACTIVATION_METHODS[node.target], args[1:], kwargs)), args[0], ()
        if node.target in _AFFINE.values():
            op, source = _affine(node.target, args, kwargs)
            return op, source, ()
        if node.target in _RESHAPE_METHODS:
            return _Reshape(), args[0], ()
        raise _NotMLP(f"method {node.target}")
    raise _NotMLP(f"node {node.op}")


def _is_chunk(node: fx.Node) -> bool:
    """chunk(t, 2, dim=1 or −1), as a method or a function."""
    if not ((node.op == "call_method" and node.target == "chunk") or
            (node.op == "call_function" and node.target is torch.chunk)):
        return False
    values = {"dim": 0, **dict(zip(("input", "chunks", "dim"), node.args)), **node.kwargs}
    return values.get("chunks") == 2 and values["dim"] in (1, -1)


def _chain(root: nn.Module, node, seen: set) -> list:
    """The recognised ops from the input to ``node``, in order, as (node, op); adds their nodes
    to ``seen``."""
    ops = []
    while not (isinstance(node, fx.Node) and node.op == "placeholder"):
        if not isinstance(node, fx.Node):
            raise _NotMLP("an output that is not computed from z")
        op, source, consumed = _recognise(root, node)
        ops.append((node, op))
        seen.update((node, *consumed))
        node = source
    return ops[::-1]


def _shape_query(node: fx.Node, memo: dict) -> bool:
    """Whether ``node`` computes only sizes (shape, size(), their arithmetic): no tensor work."""
    if node not in memo:
        if node.op == "call_method":
            memo[node] = node.target in _SHAPE_METHODS
        elif node.op == "call_function" and node.target is getattr:
            memo[node] = node.args[1] in _SHAPE_ATTRIBUTES
        elif node.op == "call_function" and node.target in _SCALAR_OPS:
            memo[node] = all(_shape_query(a, memo) for a in node.all_input_nodes)
        else:
            memo[node] = False
    return memo[node]


def _read(graph: fx.Graph, root: nn.Module, dtype: torch.dtype, device: torch.device) -> mlp.MLP:
    """The MLP of a graph traced from ``root`` (raises _NotMLP)."""
    (output,) = [n for n in graph.nodes if n.op == "output"]
    result = output.args[0]
    seen = set()
    if isinstance(result, (tuple, list)):
        if len(result) != 2:
            raise _NotMLP("a tuple output that is not (mean, logvar)")
        chains = [_chain(root, r, seen) for r in result]
    else:
        chains = [_chain(root, result, seen)]
    memo = {}
    for node in graph.nodes:
        if node.op in ("placeholder", "output", "get_attr") or node in seen or _shape_query(node, memo):
            continue
        raise _NotMLP(f"operation {node.name} is off the layer chain")
    trunk, heads = _split(chains)
    net = _assemble(trunk, heads)
    for layer in net.trunk + net.heads:
        for t in (layer.weight, layer.bias):
            if t is not None and (t.dtype != dtype or t.device != device):
                raise _NotMLP(f"weights of {t.dtype} on {t.device}, data of {dtype} on {device}")
    return net


def _split(chains: list):
    """(trunk ops, [ops of each head]): a head is the last dense layer and what follows it."""
    if len(chains) == 1:
        ops = [op for _, op in chains[0]]
        if any(isinstance(op, _Half) for op in ops):
            raise _NotMLP("one half of a chunk as the output")
        last = _last_linear(ops)
        return ops[:last], [ops[last:]]
    (nodes_a, nodes_b), shared = chains, 0
    while shared < min(len(nodes_a), len(nodes_b)) and nodes_a[shared][0] is nodes_b[shared][0]:
        shared += 1
    trunk = [op for _, op in nodes_a[:shared]]
    rests = [[op for _, op in nodes[shared:]] for nodes in chains]
    if all(rest and isinstance(rest[0], _Half) for rest in rests):  # one dense layer cut in two
        if rests[0][0].index == rests[1][0].index:
            raise _NotMLP("the same half of a chunk twice")
        last = _last_linear(trunk)
        layer, cut = trunk[last], trunk[last + 1:]
        trunk = trunk[:last]
        rests = [[_half(layer, rest[0].index)] + cut + rest[1:] for rest in rests]
    for rest in rests:
        if not rest or not isinstance(rest[0], _Linear) or _last_linear(rest) != 0:
            raise _NotMLP("a head that is not one dense layer and elementwise maps")
    return trunk, rests


def _last_linear(ops: list) -> int:
    linear = [i for i, op in enumerate(ops) if isinstance(op, _Linear)]
    if not linear:
        raise _NotMLP("no dense layer")
    return linear[-1]


def _half(layer: _Linear, index: int) -> _Linear:
    """Rows ``index`` of chunk(2) of a dense layer's outputs."""
    if index not in (0, 1, -1, -2):
        raise _NotMLP(f"chunk piece {index}")
    pick = lambda t: None if t is None else t.chunk(2, 0)[index]  # noqa: E731
    return _Linear(pick(layer.weight), pick(layer.bias))


def _assemble(trunk_ops: list, head_ops: list) -> mlp.MLP:
    """Dense layers with their maps folded (module docstring), then the heads."""
    before, i = _Affine(), 0  # the affine map on the next dense layer's input
    while i < len(trunk_ops) and not isinstance(trunk_ops[i], _Linear):  # maps on z
        if isinstance(trunk_ops[i], _Affine):
            before = before.then(trunk_ops[i])
        elif not isinstance(trunk_ops[i], _Reshape):
            raise _NotMLP("an activation or a chunk before the first dense layer")
        i += 1
    trunk = []
    while i < len(trunk_ops):
        end = next((j for j in range(i + 1, len(trunk_ops)) if isinstance(trunk_ops[j], _Linear)), len(trunk_ops))
        layer, before = _layer(trunk_ops[i], trunk_ops[i + 1:end], before)
        trunk.append(layer)
        i = end
    heads = []
    for ops in head_ops:
        layer, after = _layer(ops[0], ops[1:], before)
        layer.scale, layer.shift = after.scale, after.shift
        heads.append(layer)
    return mlp.MLP(trunk, *heads)


def _layer(linear: _Linear, maps: list, before: _Affine):
    """(mlp.Layer, the affine map after its activation) of a dense layer whose input is first
    mapped by ``before`` and whose output goes through ``maps``."""
    inner, act, after = _Affine(), None, _Affine()
    for op in maps:
        if isinstance(op, _Affine):
            inner, after = (inner.then(op), after) if act is None else (inner, after.then(op))
        elif isinstance(op, _Act) and not isinstance(op.act, mlp.Identity):
            if act is not None:
                raise _NotMLP("two activations after one dense layer")
            act = op.act
        elif isinstance(op, _Half):
            raise _NotMLP("a chunk inside the trunk")
    weight, bias = linear.weight.detach(), None if linear.bias is None else linear.bias.detach()
    if weight.dim() != 2 or (bias is not None and bias.shape != weight.shape[:1]):
        raise _NotMLP("a dense layer's weight is not [out, in] with bias [out]")
    if before.shift != 0.0:  # W(s h + c) + b = (sW) h + (b + c Σ_j W_j)
        extra = before.shift * weight.sum(1)
        bias = extra if bias is None else bias + extra
    if before.scale != 1.0:
        weight = before.scale * weight
    if not inner.identity:  # s (W h + b) + c
        weight = inner.scale * weight
        bias = torch.full_like(weight[:, 0], inner.shift) if bias is None else inner.scale * bias + inner.shift
    return mlp.Layer(weight, bias, act or mlp.Identity()), after
