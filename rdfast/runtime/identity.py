"""What a run's result depends on, as bytes for a checkpoint's fingerprint.

``feed(h, obj)`` updates the hash ``h`` with everything about ``obj`` that can change what it
computes, deterministically across processes (no ids, addresses or set orders):

* tensors and arrays: dtype, shape and values; numbers, strings, containers: their contents;
* functions: module, qualified name, bytecode, constants, defaults, closure values and the
  globals they read (modules by name), recursively; bound methods and partials: their parts;
* nn.Modules: every submodule's class and its settings (``extra_repr``), the state_dict, the
  training flag, public attributes, TorchScript code, and the code of user classes;
* classes: module, qualified name and the code of their methods (torch's and builtins' by name);
* other objects: their class and their state (``__getstate__`` if the class defines one, else
  their attributes).

Objects reached twice hash as a back reference. Forward hooks and private (``_``) attributes of
modules are not covered.
"""
from __future__ import annotations

import functools
import hashlib
import types

import numpy as np
import torch

_SCALARS = (type(None), bool, int, float, complex, str, bytes, np.generic)


def feed(h, obj) -> None:
    """Update ``h`` (a hashlib object) with ``obj``'s identity."""
    _Feeder(h).feed(obj)


def _library(cls) -> bool:
    """A class of torch, NumPy or the standard library (identified by name, its code is not ours)."""
    root = (getattr(cls, "__module__", None) or "").split(".")[0]
    return root in ("builtins", "torch", "numpy", "functools", "abc", "typing", "collections", "enum")


class _Feeder:
    def __init__(self, h):
        self.h, self.seen, self.keep = h, {}, []  # keep: what was seen stays alive, so ids stay unique

    def put(self, *parts) -> None:
        for part in parts:
            self.h.update(repr(part).encode() if not isinstance(part, bytes) else part)
            self.h.update(b"\x00")

    def feed(self, obj) -> None:
        if isinstance(obj, _SCALARS):
            self.put(type(obj).__name__, obj.tobytes() if isinstance(obj, np.generic) else obj)
            return
        if id(obj) in self.seen:
            self.put("ref", self.seen[id(obj)])
            return
        self.seen[id(obj)] = len(self.seen)
        self.keep.append(obj)
        if isinstance(obj, torch.Tensor):
            t = obj.detach().cpu().contiguous()
            self.put("tensor", t.dtype, tuple(t.shape), t.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(obj, np.ndarray):
            self.put("array", obj.dtype.str, obj.shape, np.ascontiguousarray(obj).tobytes())
        elif isinstance(obj, (list, tuple)):
            self.put(type(obj).__name__, len(obj))
            for item in obj:
                self.feed(item)
        elif isinstance(obj, (set, frozenset)):
            self.put("set", sorted(_digest(item) for item in obj))
        elif isinstance(obj, dict):
            self.put("dict", len(obj))
            for key in sorted(obj, key=repr):
                self.put(repr(key))
                self.feed(obj[key])
        elif isinstance(obj, types.ModuleType):
            self.put("module", obj.__name__)
        elif isinstance(obj, types.CodeType):
            self.put("code", obj.co_code, obj.co_names, obj.co_varnames)
            self.feed(obj.co_consts)
        elif isinstance(obj, types.FunctionType):
            self._function(obj)
        elif isinstance(obj, types.MethodType):
            self.put("method")
            self.feed(obj.__func__)
            self.feed(obj.__self__)
        elif isinstance(obj, functools.partial):
            self.put("partial")
            self.feed((obj.func, obj.args, obj.keywords))
        elif isinstance(obj, (staticmethod, classmethod)):
            self.feed(obj.__func__)
        elif isinstance(obj, property):
            self.feed((obj.fget, obj.fset))
        elif isinstance(obj, type):
            self._class(obj)
        elif isinstance(obj, torch.nn.Module):
            self._module(obj)
        elif isinstance(obj, (types.BuiltinFunctionType, torch.dtype, torch.device)) or _library(type(obj)):
            self.put("named", getattr(obj, "__module__", None), getattr(obj, "__qualname__", None), str(obj)
                     if isinstance(obj, (torch.dtype, torch.device)) else getattr(obj, "__name__", None))
        else:
            self._class(type(obj))
            self.feed(_state(obj))

    def _function(self, fn) -> None:
        code = fn.__code__
        self.put("function", fn.__module__, fn.__qualname__)
        self.feed(code)
        self.feed((fn.__defaults__, fn.__kwdefaults__))
        self.feed(tuple(_cell(c) for c in fn.__closure__ or ()))
        names = sorted(_global_names(code))
        self.feed({name: fn.__globals__[name] for name in names if name in fn.__globals__})

    def _class(self, cls) -> None:
        self.put("class", cls.__module__, cls.__qualname__)
        for base in cls.__mro__:
            if _library(base):
                continue
            self.put(base.__module__, base.__qualname__)
            for name, value in sorted(vars(base).items()):
                code = isinstance(value, (types.FunctionType, staticmethod, classmethod, property))
                if code or isinstance(value, _SCALARS) and not name.startswith("__"):  # not __doc__, __firstlineno__
                    self.put(name)
                    self.feed(value)

    def _module(self, module: torch.nn.Module) -> None:
        self.put("nn.Module")
        for name, sub in module.named_modules():
            self.put(name, sub.training, sub.extra_repr())
            self._class(type(sub))
            if isinstance(sub, torch.jit.ScriptModule):
                self.put(getattr(sub, "code", None))
            self.feed({k: v for k, v in vars(sub).items() if not k.startswith("_") and k != "training"})
        self.feed(module.state_dict())


def _state(obj):
    """What defines ``obj``: its class's ``__getstate__()`` where it defines one, else its attributes."""
    getstate = getattr(type(obj), "__getstate__", None)
    if getstate is not None and getstate is not getattr(object, "__getstate__", None):
        try:
            return obj.__getstate__()
        except Exception:  # a state that cannot be taken (e.g. of an unpicklable object): its attributes
            pass
    return getattr(obj, "__dict__", {})


def _cell(cell):
    try:
        return cell.cell_contents
    except ValueError:  # an empty cell
        return None


def _global_names(code: types.CodeType) -> set:
    """The names ``code`` (and the code nested in it) reads, some of them globals."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _global_names(const)
    return names


def _digest(obj) -> str:
    h = hashlib.sha256()
    feed(h, obj)
    return h.hexdigest()
