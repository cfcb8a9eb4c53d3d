"""The blocking and the asyncio client are twins written in one shape: after removing async/await
(and mapping the few names that must differ), every method of `steerlm.client.sync` equals its
counterpart in `steerlm.client.aio` — so a fix made to one cannot silently miss the other."""

from __future__ import annotations

import ast
import inspect

import steerlm.client.aio as aio
import steerlm.client.sync as sync

# Names that differ by nature (types, primitives); mapped async → sync before comparing.
NAMES = {
    "AsyncSteerLMClient": "SteerLMClient", "AsyncConnection": "Connection", "AsyncSharedWait": "SharedWait",
    "AsyncGenerator": "Generator", "Awaitable": "T_", "anext": "next", "aclose": "close",
    "__aenter__": "__enter__", "__aexit__": "__exit__",
}
# Methods whose bodies differ by design, with the reason.
DIFFERENT = {
    "_setup": "the async client needs no lock (one event loop at a time)",
    "_conn": "the same, without the double-checked lock",
    "batch": "the async batch sends its requests concurrently (gather), the sync one in turn",
    "close": "the sync close takes the lock",
}


class _Normalise(ast.NodeTransformer):
    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> ast.AST:
        self.generic_visit(node)
        node.name = NAMES.get(node.name, node.name)
        return ast.FunctionDef(**{f: getattr(node, f) for f in node._fields})  # type: ignore[arg-type]

    def visit_AsyncFor(self, node: ast.AsyncFor) -> ast.AST:
        self.generic_visit(node)
        return ast.For(**{f: getattr(node, f) for f in node._fields})  # type: ignore[arg-type]

    def visit_AsyncWith(self, node: ast.AsyncWith) -> ast.AST:
        self.generic_visit(node)
        return ast.With(**{f: getattr(node, f) for f in node._fields})  # type: ignore[arg-type]

    def visit_Await(self, node: ast.Await) -> ast.AST:
        return self.visit(node.value)

    def visit_Name(self, node: ast.Name) -> ast.AST:
        node.id = NAMES.get(node.id, node.id)
        return node

    def visit_Attribute(self, node: ast.Attribute) -> ast.AST:
        self.generic_visit(node)
        node.attr = NAMES.get(node.attr, node.attr)
        return node

    def visit_Constant(self, node: ast.Constant) -> ast.AST:  # docstrings and type strings may differ
        return ast.Constant(value="…") if isinstance(node.value, str) else node



def _methods(module: object, cls: type) -> dict[str, str]:
    tree = ast.parse(inspect.getsource(cls))
    [node] = tree.body
    assert isinstance(node, ast.ClassDef)
    out = {}
    for item in node.body:
        if isinstance(item, ast.FunctionDef | ast.AsyncFunctionDef):
            item.returns = None  # return annotations differ by nature (Generator vs AsyncGenerator)
            for arg in item.args.args + item.args.kwonlyargs:
                arg.annotation = None
            out[NAMES.get(item.name, item.name)] = ast.dump(_Normalise().visit(item))
    return out


def test_the_sync_and_async_clients_have_the_same_methods_and_bodies() -> None:
    blocking, asyncio_ = _methods(sync, sync.SteerLMClient), _methods(aio, aio.AsyncSteerLMClient)
    assert blocking.keys() == asyncio_.keys()
    differing = sorted(name for name in blocking if blocking[name] != asyncio_[name])
    assert differing == sorted(DIFFERENT), f"twins drifted apart: {set(differing) - set(DIFFERENT)}"


def test_the_module_level_helpers_are_twins_too() -> None:
    def helper(module: object) -> str:
        node = ast.parse(inspect.getsource(module._infer))  # type: ignore[attr-defined]
        fn = node.body[0]
        assert isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef)
        fn.returns = None
        for arg in fn.args.args:
            arg.annotation = None
        return ast.dump(_Normalise().visit(fn))

    assert helper(sync) == helper(aio)
