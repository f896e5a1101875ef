__version__ = "0.1.0"

import importlib.abc, importlib.machinery, sys


def __getattr__(name):
    "Submodules on first use (PEP 562): `import factlab; factlab.probes` without importing every module up front."
    import importlib
    try: return importlib.import_module(f"{__name__}.{name}")
    except ModuleNotFoundError as e:
        if e.name != f"{__name__}.{name}": raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


# Parameters are documented nbdev-style, by a comment beside each one (docments), which `help()` cannot see.
# Each factlab module, once imported, gets those comments appended to the docstrings of what it exports.
def _with_param_docs(obj):
    from fastcore.docments import docments
    try: docs = {k: v for k, v in docments(obj).items() if v}
    except Exception: return                   # no source to read (e.g. a dataclass's generated __init__)
    if not docs or not obj.__doc__ or "\nParameters:\n" in obj.__doc__: return
    ret = docs.pop("return", None)
    lines = [f"    {k}: {v}" for k, v in docs.items()] + ([f"Returns: {ret}"] if ret else [])
    try: obj.__doc__ += "\n\nParameters:\n" + "\n".join(lines)
    except AttributeError: pass                # a read-only __doc__


class _DocumentingLoader(importlib.machinery.SourceFileLoader):
    def exec_module(self, module):
        super().exec_module(module)
        for name in getattr(module, "__all__", []):
            obj = getattr(module, name, None)
            if callable(obj) and getattr(obj, "__module__", None) == module.__name__: _with_param_docs(obj)


class _DocumentingFinder(importlib.abc.MetaPathFinder):
    def find_spec(self, fullname, path, target=None):
        if not fullname.startswith(__name__ + "."): return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is not None and type(spec.loader) is importlib.machinery.SourceFileLoader:
            spec.loader = _DocumentingLoader(spec.loader.name, spec.loader.path)
        return spec


if not any(isinstance(f, _DocumentingFinder) for f in sys.meta_path): sys.meta_path.insert(0, _DocumentingFinder())
